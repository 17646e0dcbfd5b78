from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.balance_out import BalanceOut


T = TypeVar("T", bound="MovementResponse")


@_attrs_define
class MovementResponse:
    """
    Attributes:
        transaction_id (int):
        user_id (int):
        amount (str): Decimal rubles, two places
        balance (BalanceOut):
        created_at (datetime.datetime):
    """

    transaction_id: int
    user_id: int
    amount: str
    balance: BalanceOut
    created_at: datetime.datetime
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        transaction_id = self.transaction_id

        user_id = self.user_id

        amount = self.amount

        balance = self.balance.to_dict()

        created_at = self.created_at.isoformat()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "transaction_id": transaction_id,
                "user_id": user_id,
                "amount": amount,
                "balance": balance,
                "created_at": created_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.balance_out import BalanceOut  # noqa: PLC0415

        d = dict(src_dict)
        transaction_id = d.pop("transaction_id")

        user_id = d.pop("user_id")

        amount = d.pop("amount")

        balance = BalanceOut.from_dict(d.pop("balance"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        movement_response = cls(
            transaction_id=transaction_id,
            user_id=user_id,
            amount=amount,
            balance=balance,
            created_at=created_at,
        )

        movement_response.additional_properties = d
        return movement_response

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
