from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="ReservationRequest")


@_attrs_define
class ReservationRequest:
    """
    Attributes:
        user_id (int): Positive 64-bit integer id
        service_id (int): Positive 64-bit integer id
        order_id (int): Positive 64-bit integer id
        amount (float | str): Decimal rubles, > 0 and at most 10000000000000.00, at most 2 decimals: a string such as
            "150.25" (preferred) or a JSON number
        description (str | Unset): Free text, no control chars Default: ''.
        expires_at (datetime.datetime | None | Unset): RFC 3339 with a zone, in the future, at most 90 days ahead: the
            money returns to available then, unless recognized or cancelled before
    """

    user_id: int
    service_id: int
    order_id: int
    amount: float | str
    description: str | Unset = ""
    expires_at: datetime.datetime | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        user_id = self.user_id

        service_id = self.service_id

        order_id = self.order_id

        amount: float | str
        amount = self.amount

        description = self.description

        expires_at: None | str | Unset
        if isinstance(self.expires_at, Unset):
            expires_at = UNSET
        elif isinstance(self.expires_at, datetime.datetime):
            expires_at = self.expires_at.isoformat()
        else:
            expires_at = self.expires_at

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "user_id": user_id,
                "service_id": service_id,
                "order_id": order_id,
                "amount": amount,
            }
        )
        if description is not UNSET:
            field_dict["description"] = description
        if expires_at is not UNSET:
            field_dict["expires_at"] = expires_at

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        user_id = d.pop("user_id")

        service_id = d.pop("service_id")

        order_id = d.pop("order_id")

        def _parse_amount(data: object) -> float | str:
            return cast(float | str, data)

        amount = _parse_amount(d.pop("amount"))

        description = d.pop("description", UNSET)

        def _parse_expires_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                expires_at_type_0 = datetime.datetime.fromisoformat(data)

                return expires_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        expires_at = _parse_expires_at(d.pop("expires_at", UNSET))

        reservation_request = cls(
            user_id=user_id,
            service_id=service_id,
            order_id=order_id,
            amount=amount,
            description=description,
            expires_at=expires_at,
        )

        return reservation_request
