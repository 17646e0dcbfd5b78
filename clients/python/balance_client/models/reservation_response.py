from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.reservation_response_status import ReservationResponseStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.balance_out import BalanceOut


T = TypeVar("T", bound="ReservationResponse")


@_attrs_define
class ReservationResponse:
    """
    Attributes:
        order_id (int):
        user_id (int):
        service_id (int):
        amount (str): Decimal rubles, two places
        status (ReservationResponseStatus):
        created_at (datetime.datetime):
        recognized_amount (None | str | Unset): Decimal rubles, two places
        closed_at (datetime.datetime | None | Unset):
        balance (BalanceOut | None | Unset):
        expires_at (datetime.datetime | None | Unset): When the hold runs out; null: never
    """

    order_id: int
    user_id: int
    service_id: int
    amount: str
    status: ReservationResponseStatus
    created_at: datetime.datetime
    recognized_amount: None | str | Unset = UNSET
    closed_at: datetime.datetime | None | Unset = UNSET
    balance: BalanceOut | None | Unset = UNSET
    expires_at: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.balance_out import BalanceOut  # noqa: PLC0415

        order_id = self.order_id

        user_id = self.user_id

        service_id = self.service_id

        amount = self.amount

        status = self.status.value

        created_at = self.created_at.isoformat()

        recognized_amount: None | str | Unset
        if isinstance(self.recognized_amount, Unset):
            recognized_amount = UNSET
        else:
            recognized_amount = self.recognized_amount

        closed_at: None | str | Unset
        if isinstance(self.closed_at, Unset):
            closed_at = UNSET
        elif isinstance(self.closed_at, datetime.datetime):
            closed_at = self.closed_at.isoformat()
        else:
            closed_at = self.closed_at

        balance: dict[str, Any] | None | Unset
        if isinstance(self.balance, Unset):
            balance = UNSET
        elif isinstance(self.balance, BalanceOut):
            balance = self.balance.to_dict()
        else:
            balance = self.balance

        expires_at: None | str | Unset
        if isinstance(self.expires_at, Unset):
            expires_at = UNSET
        elif isinstance(self.expires_at, datetime.datetime):
            expires_at = self.expires_at.isoformat()
        else:
            expires_at = self.expires_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "order_id": order_id,
                "user_id": user_id,
                "service_id": service_id,
                "amount": amount,
                "status": status,
                "created_at": created_at,
            }
        )
        if recognized_amount is not UNSET:
            field_dict["recognized_amount"] = recognized_amount
        if closed_at is not UNSET:
            field_dict["closed_at"] = closed_at
        if balance is not UNSET:
            field_dict["balance"] = balance
        if expires_at is not UNSET:
            field_dict["expires_at"] = expires_at

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.balance_out import BalanceOut  # noqa: PLC0415

        d = dict(src_dict)
        order_id = d.pop("order_id")

        user_id = d.pop("user_id")

        service_id = d.pop("service_id")

        amount = d.pop("amount")

        status = ReservationResponseStatus(d.pop("status"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        def _parse_recognized_amount(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        recognized_amount = _parse_recognized_amount(d.pop("recognized_amount", UNSET))

        def _parse_closed_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                closed_at_type_0 = datetime.datetime.fromisoformat(data)

                return closed_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        closed_at = _parse_closed_at(d.pop("closed_at", UNSET))

        def _parse_balance(data: object) -> BalanceOut | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                balance_type_0 = BalanceOut.from_dict(data)

                return balance_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(BalanceOut | None | Unset, data)

        balance = _parse_balance(d.pop("balance", UNSET))

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

        reservation_response = cls(
            order_id=order_id,
            user_id=user_id,
            service_id=service_id,
            amount=amount,
            status=status,
            created_at=created_at,
            recognized_amount=recognized_amount,
            closed_at=closed_at,
            balance=balance,
            expires_at=expires_at,
        )

        reservation_response.additional_properties = d
        return reservation_response

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
