from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="CancelRequest")


@_attrs_define
class CancelRequest:
    """
    Attributes:
        user_id (int): Positive 64-bit integer id
        service_id (int): Positive 64-bit integer id
    """

    user_id: int
    service_id: int

    def to_dict(self) -> dict[str, Any]:
        user_id = self.user_id

        service_id = self.service_id

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "user_id": user_id,
                "service_id": service_id,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        user_id = d.pop("user_id")

        service_id = d.pop("service_id")

        cancel_request = cls(
            user_id=user_id,
            service_id=service_id,
        )

        return cancel_request
