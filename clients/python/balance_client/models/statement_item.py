from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.statement_item_account import StatementItemAccount
from ..models.statement_item_kind import StatementItemKind
from ..types import UNSET, Unset

T = TypeVar("T", bound="StatementItem")


@_attrs_define
class StatementItem:
    """
    Attributes:
        id (int):
        transaction_id (int):
        kind (StatementItemKind):
        account (StatementItemAccount):
        amount (str): Signed decimal rubles: + in, - out
        balance_after (str): Decimal rubles, two places
        description (str):
        created_at (datetime.datetime):
        service_id (int | None | Unset):
        service_name (None | str | Unset):
        order_id (int | None | Unset):
        counterparty_user_id (int | None | Unset):
    """

    id: int
    transaction_id: int
    kind: StatementItemKind
    account: StatementItemAccount
    amount: str
    balance_after: str
    description: str
    created_at: datetime.datetime
    service_id: int | None | Unset = UNSET
    service_name: None | str | Unset = UNSET
    order_id: int | None | Unset = UNSET
    counterparty_user_id: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        transaction_id = self.transaction_id

        kind = self.kind.value

        account = self.account.value

        amount = self.amount

        balance_after = self.balance_after

        description = self.description

        created_at = self.created_at.isoformat()

        service_id: int | None | Unset
        if isinstance(self.service_id, Unset):
            service_id = UNSET
        else:
            service_id = self.service_id

        service_name: None | str | Unset
        if isinstance(self.service_name, Unset):
            service_name = UNSET
        else:
            service_name = self.service_name

        order_id: int | None | Unset
        if isinstance(self.order_id, Unset):
            order_id = UNSET
        else:
            order_id = self.order_id

        counterparty_user_id: int | None | Unset
        if isinstance(self.counterparty_user_id, Unset):
            counterparty_user_id = UNSET
        else:
            counterparty_user_id = self.counterparty_user_id

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "transaction_id": transaction_id,
                "kind": kind,
                "account": account,
                "amount": amount,
                "balance_after": balance_after,
                "description": description,
                "created_at": created_at,
            }
        )
        if service_id is not UNSET:
            field_dict["service_id"] = service_id
        if service_name is not UNSET:
            field_dict["service_name"] = service_name
        if order_id is not UNSET:
            field_dict["order_id"] = order_id
        if counterparty_user_id is not UNSET:
            field_dict["counterparty_user_id"] = counterparty_user_id

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        transaction_id = d.pop("transaction_id")

        kind = StatementItemKind(d.pop("kind"))

        account = StatementItemAccount(d.pop("account"))

        amount = d.pop("amount")

        balance_after = d.pop("balance_after")

        description = d.pop("description")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        def _parse_service_id(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        service_id = _parse_service_id(d.pop("service_id", UNSET))

        def _parse_service_name(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        service_name = _parse_service_name(d.pop("service_name", UNSET))

        def _parse_order_id(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        order_id = _parse_order_id(d.pop("order_id", UNSET))

        def _parse_counterparty_user_id(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        counterparty_user_id = _parse_counterparty_user_id(d.pop("counterparty_user_id", UNSET))

        statement_item = cls(
            id=id,
            transaction_id=transaction_id,
            kind=kind,
            account=account,
            amount=amount,
            balance_after=balance_after,
            description=description,
            created_at=created_at,
            service_id=service_id,
            service_name=service_name,
            order_id=order_id,
            counterparty_user_id=counterparty_user_id,
        )

        statement_item.additional_properties = d
        return statement_item

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
