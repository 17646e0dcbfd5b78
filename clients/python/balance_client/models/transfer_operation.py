from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="TransferOperation")


@_attrs_define
class TransferOperation:
    """
    Attributes:
        from_user_id (int): Positive 64-bit integer id
        to_user_id (int): Positive 64-bit integer id
        amount (float | str): Decimal rubles, > 0 and at most 10000000000000.00, at most 2 decimals: a string such as
            "150.25" (preferred) or a JSON number
        op (Literal['transfer']):
        description (str | Unset): Free text, no control chars Default: ''.
        idempotency_key (str | Unset): 1..255 printable ASCII, with the Idempotency-Key header's meaning
    """

    from_user_id: int
    to_user_id: int
    amount: float | str
    op: Literal["transfer"]
    description: str | Unset = ""
    idempotency_key: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from_user_id = self.from_user_id

        to_user_id = self.to_user_id

        amount: float | str
        amount = self.amount

        op = self.op

        description = self.description

        idempotency_key = self.idempotency_key

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "from_user_id": from_user_id,
                "to_user_id": to_user_id,
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
        from_user_id = d.pop("from_user_id")

        to_user_id = d.pop("to_user_id")

        def _parse_amount(data: object) -> float | str:
            return cast(float | str, data)

        amount = _parse_amount(d.pop("amount"))

        op = cast(Literal["transfer"], d.pop("op"))
        if op != "transfer":
            raise ValueError(f"op must match const 'transfer', got '{op}'")

        description = d.pop("description", UNSET)

        idempotency_key = d.pop("idempotency_key", UNSET)

        transfer_operation = cls(
            from_user_id=from_user_id,
            to_user_id=to_user_id,
            amount=amount,
            op=op,
            description=description,
            idempotency_key=idempotency_key,
        )

        return transfer_operation
