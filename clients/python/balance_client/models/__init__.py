"""Contains all the data models used in inputs/outputs"""

from .balance_out import BalanceOut
from .balance_response import BalanceResponse
from .batch_request import BatchRequest
from .batch_response import BatchResponse
from .batch_result import BatchResult
from .batch_result_body import BatchResultBody
from .cancel_operation import CancelOperation
from .cancel_request import CancelRequest
from .database_out import DatabaseOut
from .deposit_operation import DepositOperation
from .deposit_request import DepositRequest
from .health_status import HealthStatus
from .health_status_status import HealthStatusStatus
from .list_user_transactions_order import ListUserTransactionsOrder
from .list_user_transactions_sort import ListUserTransactionsSort
from .movement_response import MovementResponse
from .problem import Problem
from .problem_field import ProblemField
from .recognize_operation import RecognizeOperation
from .recognize_request import RecognizeRequest
from .report_link import ReportLink
from .report_request import ReportRequest
from .reservation_request import ReservationRequest
from .reservation_response import ReservationResponse
from .reservation_response_status import ReservationResponseStatus
from .reserve_operation import ReserveOperation
from .service_list import ServiceList
from .service_name_request import ServiceNameRequest
from .service_out import ServiceOut
from .statement_item import StatementItem
from .statement_item_account import StatementItemAccount
from .statement_item_kind import StatementItemKind
from .statement_response import StatementResponse
from .transfer_operation import TransferOperation
from .transfer_request import TransferRequest
from .transfer_response import TransferResponse
from .withdrawal_operation import WithdrawalOperation
from .withdrawal_request import WithdrawalRequest

__all__ = (
    "BalanceOut",
    "BalanceResponse",
    "BatchRequest",
    "BatchResponse",
    "BatchResult",
    "BatchResultBody",
    "CancelOperation",
    "CancelRequest",
    "DatabaseOut",
    "DepositOperation",
    "DepositRequest",
    "HealthStatus",
    "HealthStatusStatus",
    "ListUserTransactionsOrder",
    "ListUserTransactionsSort",
    "MovementResponse",
    "Problem",
    "ProblemField",
    "RecognizeOperation",
    "RecognizeRequest",
    "ReportLink",
    "ReportRequest",
    "ReservationRequest",
    "ReservationResponse",
    "ReservationResponseStatus",
    "ReserveOperation",
    "ServiceList",
    "ServiceNameRequest",
    "ServiceOut",
    "StatementItem",
    "StatementItemAccount",
    "StatementItemKind",
    "StatementResponse",
    "TransferOperation",
    "TransferRequest",
    "TransferResponse",
    "WithdrawalOperation",
    "WithdrawalRequest",
)
