from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="RecognizeOperation")


@_attrs_define
class RecognizeOperation:
    """
    Attributes:
        user_id (int): Positive 64-bit integer id
        service_id (int): Positive 64-bit integer id
        amount (float | str): Decimal rubles, > 0 and at most 10000000000000.00, at most 2 decimals: a string such as
            "150.25" (preferred) or a JSON number
        order_id (int): Positive 64-bit integer id
        op (Literal['recognize']):
        idempotency_key (str | Unset): 1..255 printable ASCII, with the Idempotency-Key header's meaning
    """

    user_id: int
    service_id: int
    amount: float | str
    order_id: int
    op: Literal["recognize"]
    idempotency_key: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        user_id = self.user_id

        service_id = self.service_id

        amount: float | str
        amount = self.amount

        order_id = self.order_id

        op = self.op

        idempotency_key = self.idempotency_key

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "user_id": user_id,
                "service_id": service_id,
                "amount": amount,
                "order_id": order_id,
                "op": op,
            }
        )
        if idempotency_key is not UNSET:
            field_dict["idempotency_key"] = idempotency_key

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        user_id = d.pop("user_id")

        service_id = d.pop("service_id")

        def _parse_amount(data: object) -> float | str:
            return cast(float | str, data)

        amount = _parse_amount(d.pop("amount"))

        order_id = d.pop("order_id")

        op = cast(Literal["recognize"], d.pop("op"))
        if op != "recognize":
            raise ValueError(f"op must match const 'recognize', got '{op}'")

        idempotency_key = d.pop("idempotency_key", UNSET)

        recognize_operation = cls(
            user_id=user_id,
            service_id=service_id,
            amount=amount,
            order_id=order_id,
            op=op,
            idempotency_key=idempotency_key,
        )

        return recognize_operation
