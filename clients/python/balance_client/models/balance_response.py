from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="BalanceResponse")


@_attrs_define
class BalanceResponse:
    """
    Attributes:
        user_id (int):
        available (str): Decimal rubles, two places
        reserved (str): Decimal rubles, two places
        total (str): Decimal rubles, two places
        currency (Literal['RUB'] | Unset):  Default: 'RUB'.
    """

    user_id: int
    available: str
    reserved: str
    total: str
    currency: Literal["RUB"] | Unset = "RUB"
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        user_id = self.user_id

        available = self.available

        reserved = self.reserved

        total = self.total

        currency = self.currency

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "user_id": user_id,
                "available": available,
                "reserved": reserved,
                "total": total,
            }
        )
        if currency is not UNSET:
            field_dict["currency"] = currency

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        user_id = d.pop("user_id")

        available = d.pop("available")

        reserved = d.pop("reserved")

        total = d.pop("total")

        currency = cast(Literal["RUB"] | Unset, d.pop("currency", UNSET))
        if currency != "RUB" and not isinstance(currency, Unset):
            raise ValueError(f"currency must match const 'RUB', got '{currency}'")

        balance_response = cls(
            user_id=user_id,
            available=available,
            reserved=reserved,
            total=total,
            currency=currency,
        )

        balance_response.additional_properties = d
        return balance_response

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
