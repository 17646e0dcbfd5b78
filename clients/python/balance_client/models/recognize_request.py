from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="RecognizeRequest")


@_attrs_define
class RecognizeRequest:
    """
    Attributes:
        user_id (int): Positive 64-bit integer id
        service_id (int): Positive 64-bit integer id
        amount (float | str): Decimal rubles, > 0 and at most 10000000000000.00, at most 2 decimals: a string such as
            "150.25" (preferred) or a JSON number
    """

    user_id: int
    service_id: int
    amount: float | str

    def to_dict(self) -> dict[str, Any]:
        user_id = self.user_id

        service_id = self.service_id

        amount: float | str
        amount = self.amount

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "user_id": user_id,
                "service_id": service_id,
                "amount": amount,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        user_id = d.pop("user_id")

        service_id = d.pop("service_id")

        def _parse_amount(data: object) -> float | str:
            return cast(float | str, data)

        amount = _parse_amount(d.pop("amount"))

        recognize_request = cls(
            user_id=user_id,
            service_id=service_id,
            amount=amount,
        )

        return recognize_request
