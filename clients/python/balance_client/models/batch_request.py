from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.cancel_operation import CancelOperation
    from ..models.deposit_operation import DepositOperation
    from ..models.recognize_operation import RecognizeOperation
    from ..models.reserve_operation import ReserveOperation
    from ..models.transfer_operation import TransferOperation
    from ..models.withdrawal_operation import WithdrawalOperation


T = TypeVar("T", bound="BatchRequest")


@_attrs_define
class BatchRequest:
    """
    Attributes:
        operations (list[CancelOperation | DepositOperation | RecognizeOperation | ReserveOperation | TransferOperation
            | WithdrawalOperation]): Applied in this order; each takes its single endpoint's fields
        atomic (bool | Unset): true: all or nothing; false: each operation stands alone Default: False.
    """

    operations: list[
        CancelOperation
        | DepositOperation
        | RecognizeOperation
        | ReserveOperation
        | TransferOperation
        | WithdrawalOperation
    ]
    atomic: bool | Unset = False

    def to_dict(self) -> dict[str, Any]:
        from ..models.deposit_operation import DepositOperation  # noqa: PLC0415
        from ..models.recognize_operation import RecognizeOperation  # noqa: PLC0415
        from ..models.reserve_operation import ReserveOperation  # noqa: PLC0415
        from ..models.transfer_operation import TransferOperation  # noqa: PLC0415
        from ..models.withdrawal_operation import WithdrawalOperation  # noqa: PLC0415

        operations = []
        for operations_item_data in self.operations:
            operations_item: dict[str, Any]
            if isinstance(operations_item_data, DepositOperation):
                operations_item = operations_item_data.to_dict()
            elif isinstance(operations_item_data, WithdrawalOperation):
                operations_item = operations_item_data.to_dict()
            elif isinstance(operations_item_data, TransferOperation):
                operations_item = operations_item_data.to_dict()
            elif isinstance(operations_item_data, ReserveOperation):
                operations_item = operations_item_data.to_dict()
            elif isinstance(operations_item_data, RecognizeOperation):
                operations_item = operations_item_data.to_dict()
            else:
                operations_item = operations_item_data.to_dict()

            operations.append(operations_item)

        atomic = self.atomic

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "operations": operations,
            }
        )
        if atomic is not UNSET:
            field_dict["atomic"] = atomic

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.cancel_operation import CancelOperation  # noqa: PLC0415
        from ..models.deposit_operation import DepositOperation  # noqa: PLC0415
        from ..models.recognize_operation import RecognizeOperation  # noqa: PLC0415
        from ..models.reserve_operation import ReserveOperation  # noqa: PLC0415
        from ..models.transfer_operation import TransferOperation  # noqa: PLC0415
        from ..models.withdrawal_operation import WithdrawalOperation  # noqa: PLC0415

        d = dict(src_dict)
        operations = []
        _operations = d.pop("operations")
        for operations_item_data in _operations:

            def _parse_operations_item(
                data: object,
            ) -> (
                CancelOperation
                | DepositOperation
                | RecognizeOperation
                | ReserveOperation
                | TransferOperation
                | WithdrawalOperation
            ):
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    operations_item_type_0 = DepositOperation.from_dict(data)

                    return operations_item_type_0
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    operations_item_type_1 = WithdrawalOperation.from_dict(data)

                    return operations_item_type_1
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    operations_item_type_2 = TransferOperation.from_dict(data)

                    return operations_item_type_2
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    operations_item_type_3 = ReserveOperation.from_dict(data)

                    return operations_item_type_3
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    operations_item_type_4 = RecognizeOperation.from_dict(data)

                    return operations_item_type_4
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                if not isinstance(data, dict):
                    raise TypeError()
                operations_item_type_5 = CancelOperation.from_dict(data)

                return operations_item_type_5

            operations_item = _parse_operations_item(operations_item_data)

            operations.append(operations_item)

        atomic = d.pop("atomic", UNSET)

        batch_request = cls(
            operations=operations,
            atomic=atomic,
        )

        return batch_request
