from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="WithdrawalRequest")


@_attrs_define
class WithdrawalRequest:
    """
    Attributes:
        user_id (int): Positive 64-bit integer id
        amount (float | str): Decimal rubles, > 0 and at most 10000000000000.00, at most 2 decimals: a string such as
            "150.25" (preferred) or a JSON number
        description (str | Unset): Free text, no control chars Default: ''.
    """

    user_id: int
    amount: float | str
    description: str | Unset = ""

    def to_dict(self) -> dict[str, Any]:
        user_id = self.user_id

        amount: float | str
        amount = self.amount

        description = self.description

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "user_id": user_id,
                "amount": amount,
            }
        )
        if description is not UNSET:
            field_dict["description"] = description

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        user_id = d.pop("user_id")

        def _parse_amount(data: object) -> float | str:
            return cast(float | str, data)

        amount = _parse_amount(d.pop("amount"))

        description = d.pop("description", UNSET)

        withdrawal_request = cls(
            user_id=user_id,
            amount=amount,
            description=description,
        )

        return withdrawal_request
