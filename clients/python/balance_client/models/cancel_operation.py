from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="CancelOperation")


@_attrs_define
class CancelOperation:
    """
    Attributes:
        user_id (int): Positive 64-bit integer id
        service_id (int): Positive 64-bit integer id
        order_id (int): Positive 64-bit integer id
        op (Literal['cancel']):
        idempotency_key (str | Unset): 1..255 printable ASCII, with the Idempotency-Key header's meaning
    """

    user_id: int
    service_id: int
    order_id: int
    op: Literal["cancel"]
    idempotency_key: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        user_id = self.user_id

        service_id = self.service_id

        order_id = self.order_id

        op = self.op

        idempotency_key = self.idempotency_key

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "user_id": user_id,
                "service_id": service_id,
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

        order_id = d.pop("order_id")

        op = cast(Literal["cancel"], d.pop("op"))
        if op != "cancel":
            raise ValueError(f"op must match const 'cancel', got '{op}'")

        idempotency_key = d.pop("idempotency_key", UNSET)

        cancel_operation = cls(
            user_id=user_id,
            service_id=service_id,
            order_id=order_id,
            op=op,
            idempotency_key=idempotency_key,
        )

        return cancel_operation
