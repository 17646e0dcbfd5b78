from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.health_status_status import HealthStatusStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.database_out import DatabaseOut


T = TypeVar("T", bound="HealthStatus")


@_attrs_define
class HealthStatus:
    """
    Attributes:
        status (HealthStatusStatus):
        database (DatabaseOut | None | Unset):
    """

    status: HealthStatusStatus
    database: DatabaseOut | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.database_out import DatabaseOut  # noqa: PLC0415

        status = self.status.value

        database: dict[str, Any] | None | Unset
        if isinstance(self.database, Unset):
            database = UNSET
        elif isinstance(self.database, DatabaseOut):
            database = self.database.to_dict()
        else:
            database = self.database

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "status": status,
            }
        )
        if database is not UNSET:
            field_dict["database"] = database

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.database_out import DatabaseOut  # noqa: PLC0415

        d = dict(src_dict)
        status = HealthStatusStatus(d.pop("status"))

        def _parse_database(data: object) -> DatabaseOut | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                database_type_0 = DatabaseOut.from_dict(data)

                return database_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(DatabaseOut | None | Unset, data)

        database = _parse_database(d.pop("database", UNSET))

        health_status = cls(
            status=status,
            database=database,
        )

        health_status.additional_properties = d
        return health_status

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
