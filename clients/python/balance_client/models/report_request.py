from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="ReportRequest")


@_attrs_define
class ReportRequest:
    """
    Attributes:
        year (int):
        month (int):
    """

    year: int
    month: int

    def to_dict(self) -> dict[str, Any]:
        year = self.year

        month = self.month

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "year": year,
                "month": month,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        year = d.pop("year")

        month = d.pop("month")

        report_request = cls(
            year=year,
            month=month,
        )

        return report_request
