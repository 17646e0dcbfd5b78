from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.batch_result_body import BatchResultBody


T = TypeVar("T", bound="BatchResult")


@_attrs_define
class BatchResult:
    """
    Attributes:
        status (int): What the single endpoint would have answered
        body (BatchResultBody): Its body: the movement, reservation or problem, as that endpoint sends it
    """

    status: int
    body: BatchResultBody
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        status = self.status

        body = self.body.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "status": status,
                "body": body,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.batch_result_body import BatchResultBody  # noqa: PLC0415

        d = dict(src_dict)
        status = d.pop("status")

        body = BatchResultBody.from_dict(d.pop("body"))

        batch_result = cls(
            status=status,
            body=body,
        )

        batch_result.additional_properties = d
        return batch_result

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
