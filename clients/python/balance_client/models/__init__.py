"""Contains all the data models used in inputs/outputs"""

from .balance_out import BalanceOut
from .balance_response import BalanceResponse
from .cancel_request import CancelRequest
from .deposit_request import DepositRequest
from .health_status import HealthStatus
from .health_status_status import HealthStatusStatus
from .list_user_transactions_order import ListUserTransactionsOrder
from .list_user_transactions_sort import ListUserTransactionsSort
from .movement_response import MovementResponse
from .problem import Problem
from .problem_field import ProblemField
from .recognize_request import RecognizeRequest
from .report_link import ReportLink
from .report_request import ReportRequest
from .reservation_request import ReservationRequest
from .reservation_response import ReservationResponse
from .reservation_response_status import ReservationResponseStatus
from .service_list import ServiceList
from .service_name_request import ServiceNameRequest
from .service_out import ServiceOut
from .statement_item import StatementItem
from .statement_item_account import StatementItemAccount
from .statement_item_kind import StatementItemKind
from .statement_response import StatementResponse
from .transfer_request import TransferRequest
from .transfer_response import TransferResponse
from .withdrawal_request import WithdrawalRequest

__all__ = (
    "BalanceOut",
    "BalanceResponse",
    "CancelRequest",
    "DepositRequest",
    "HealthStatus",
    "HealthStatusStatus",
    "ListUserTransactionsOrder",
    "ListUserTransactionsSort",
    "MovementResponse",
    "Problem",
    "ProblemField",
    "RecognizeRequest",
    "ReportLink",
    "ReportRequest",
    "ReservationRequest",
    "ReservationResponse",
    "ReservationResponseStatus",
    "ServiceList",
    "ServiceNameRequest",
    "ServiceOut",
    "StatementItem",
    "StatementItemAccount",
    "StatementItemKind",
    "StatementResponse",
    "TransferRequest",
    "TransferResponse",
    "WithdrawalRequest",
)
