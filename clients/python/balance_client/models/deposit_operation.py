from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="DepositOperation")


@_attrs_define
class DepositOperation:
    """
    Attributes:
        user_id (int): Positive 64-bit integer id
        amount (float | str): Decimal rubles, > 0 and at most 10000000000000.00, at most 2 decimals: a string such as
            "150.25" (preferred) or a JSON number
        op (Literal['deposit']):
        description (str | Unset): Free text, no control chars Default: ''.
        idempotency_key (str | Unset): 1..255 printable ASCII, with the Idempotency-Key header's meaning
    """

    user_id: int
    amount: float | str
    op: Literal["deposit"]
    description: str | Unset = ""
    idempotency_key: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        user_id = self.user_id

        amount: float | str
        amount = self.amount

        op = self.op

        description = self.description

        idempotency_key = self.idempotency_key

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "user_id": user_id,
                "amount": amount,
                "op": op,
            }
        )
        if description is not UNSET:
            field_dict["description"] = description
        if idempotency_key is not UNSET:
            field_dict["idempotency_key"] = idempotency_key

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        user_id = d.pop("user_id")

        def _parse_amount(data: object) -> float | str:
            return cast(float | str, data)

        amount = _parse_amount(d.pop("amount"))

        op = cast(Literal["deposit"], d.pop("op"))
        if op != "deposit":
            raise ValueError(f"op must match const 'deposit', got '{op}'")

        description = d.pop("description", UNSET)

        idempotency_key = d.pop("idempotency_key", UNSET)

        deposit_operation = cls(
            user_id=user_id,
            amount=amount,
            op=op,
            description=description,
            idempotency_key=idempotency_key,
        )

        return deposit_operation
