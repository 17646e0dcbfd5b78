from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="TransferRequest")


@_attrs_define
class TransferRequest:
    """
    Attributes:
        from_user_id (int): Positive 64-bit integer id
        to_user_id (int): Positive 64-bit integer id
        amount (float | str): Decimal rubles, > 0 and at most 10000000000000.00, at most 2 decimals: a string such as
            "150.25" (preferred) or a JSON number
        description (str | Unset): Free text, no control chars Default: ''.
    """

    from_user_id: int
    to_user_id: int
    amount: float | str
    description: str | Unset = ""

    def to_dict(self) -> dict[str, Any]:
        from_user_id = self.from_user_id

        to_user_id = self.to_user_id

        amount: float | str
        amount = self.amount

        description = self.description

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "from_user_id": from_user_id,
                "to_user_id": to_user_id,
                "amount": amount,
            }
        )
        if description is not UNSET:
            field_dict["description"] = description

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        from_user_id = d.pop("from_user_id")

        to_user_id = d.pop("to_user_id")

        def _parse_amount(data: object) -> float | str:
            return cast(float | str, data)

        amount = _parse_amount(d.pop("amount"))

        description = d.pop("description", UNSET)

        transfer_request = cls(
            from_user_id=from_user_id,
            to_user_id=to_user_id,
            amount=amount,
            description=description,
        )

        return transfer_request
