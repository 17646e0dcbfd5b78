"""One example per published schema, written as the structs themselves so mypy checks
their shape; a test validates each against its schema. One story: user 1 deposits
150.25, withdraws, pays user 2, reserves 30.00 for order 1001, then 25.00 of it is
recognized as revenue."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from adapters.event_message import EventBalance, EventOut
from entrypoints.http.schemas import (
    BalanceOut,
    BalanceResponse,
    BatchRequest,
    BatchResponse,
    BatchResult,
    CancelOperation,
    CancelRequest,
    DatabaseOut,
    DepositOperation,
    DepositRequest,
    EventsPage,
    EventsStatus,
    HealthStatus,
    LegIn,
    LegOut,
    LimitsRequest,
    LimitsResponse,
    MovementOperation,
    MovementRequest,
    MovementResponse,
    MoveResponse,
    Problem,
    ProblemField,
    RecognizeOperation,
    RecognizeRequest,
    ReportLink,
    ReportRequest,
    ReservationRequest,
    ReservationResponse,
    ReserveOperation,
    ServiceList,
    ServiceNameRequest,
    ServiceOut,
    StatementItem,
    StatementResponse,
    TransferOperation,
    TransferRequest,
    TransferResponse,
    WithdrawalOperation,
    WithdrawalRequest,
)

AT = datetime(2026, 11, 23, 21, 13, 19, 186093, tzinfo=UTC)
LATER = datetime(2026, 11, 23, 21, 13, 19, 329811, tzinfo=UTC)
TRANSFER_EVENT = EventOut(
    event_id=1042,
    type="transfer_out",
    user_id=7,
    user_seq=15,
    transaction_id=881,
    amount="10.00",
    available_delta="-10.00",
    reserved_delta="0.00",
    balance=EventBalance(7, "60.00", "30.00"),
    counterparty_user_id=8,
    order_id=None,
    service_id=None,
    description="rent",
    metadata={},
    idempotency_key="f7-1",
    occurred_at=LATER,
    caller="payouts",
)
EVENTS_STATUS = EventsStatus(0, 0.0, "balance-1:4242", "connected")
BALANCE = BalanceOut(user_id=1, available="75.00", reserved="0.00")
RECOGNIZED = ReservationResponse(
    order_id=1001,
    user_id=1,
    service_id=5,
    amount="30.00",
    status="recognized",
    created_at=AT,
    recognized_amount="25.00",
    closed_at=LATER,
    balance=BALANCE,
)
INSUFFICIENT = "user 1 has 75.00 available, 1000.00 requested"
INSUFFICIENT_PROBLEM = Problem(
    type="/problems/insufficient-funds",
    title="Insufficient funds",
    status=409,
    detail=INSUFFICIENT,
    errors=[ProblemField("amount", INSUFFICIENT)],
    available="75.00",
    credit_limit="0.00",
    requested="1000.00",
)
BATCH_DEPOSIT = MovementResponse(9, 1, "10.00", BalanceOut(1, "85.00", "0.00"), AT)
MOVEMENT_REQUEST = MovementRequest(
    [LegIn(1, Decimal("-100.00")), LegIn(2, Decimal("95.00")), LegIn(3, Decimal("5.00"))],
    "order 77: payout and fee",
    {"order": "77"},
)

EXAMPLES: dict[str, msgspec.Struct] = {
    "DepositRequest": DepositRequest(1, Decimal("150.25"), "Card top-up"),
    "WithdrawalRequest": WithdrawalRequest(1, Decimal("10.25")),
    "TransferRequest": TransferRequest(1, 2, Decimal("40.00"), "rent"),
    "ReservationRequest": ReservationRequest(1, 5, 1001, Decimal("30.00")),
    "RecognizeRequest": RecognizeRequest(1, 5, Decimal("25.00")),
    "CancelRequest": CancelRequest(1, 5),
    "BalanceOut": BalanceOut(1, "150.25", "0.00"),
    "MovementResponse": MovementResponse(1, 1, "150.25", BalanceOut(1, "150.25", "0.00"), AT),
    "TransferResponse": TransferResponse(
        3, 1, 2, "40.00", BalanceOut(1, "100.00", "0.00"), BalanceOut(2, "40.00", "0.00"), AT
    ),
    "ReservationResponse": RECOGNIZED,
    "BalanceResponse": BalanceResponse(1, "75.00", "0.00", "75.00"),
    "StatementItem": StatementItem(
        id=9,
        transaction_id=5,
        kind="release",
        account="available",
        amount="5.00",
        balance_after="75.00",
        description="Unused rest of order 1001 returned",
        created_at=LATER,
        service_id=5,
        service_name="Delivery",
        order_id=1001,
        caller="delivery",
    ),
    "StatementResponse": StatementResponse(
        items=[
            StatementItem(
                id=1,
                transaction_id=1,
                kind="deposit",
                account="available",
                amount="150.25",
                balance_after="150.25",
                description="Deposit: Card top-up",
                created_at=AT,
                caller="billing",
            )
        ],
        next_cursor=None,
    ),
    "DepositOperation": DepositOperation(
        1, Decimal("10.00"), "payout file line 1", idempotency_key="f7-1"
    ),
    "WithdrawalOperation": WithdrawalOperation(1, Decimal("1.00")),
    "TransferOperation": TransferOperation(1, 2, Decimal("3.00")),
    "ReserveOperation": ReserveOperation(2, 5, 77, Decimal("2.00")),
    "RecognizeOperation": RecognizeOperation(
        user_id=2, service_id=5, amount=Decimal("2.00"), order_id=77
    ),
    "CancelOperation": CancelOperation(user_id=2, service_id=5, order_id=78),
    "MovementOperation": MovementOperation(
        [LegIn(1, Decimal("-3.00")), LegIn(2, Decimal("3.00"))], "split", {"order": "77"}
    ),
    "BatchRequest": BatchRequest(
        [
            DepositOperation(1, Decimal("10.00"), "payout file line 1", idempotency_key="f7-1"),
            TransferOperation(1, 2, Decimal("3.00")),
        ]
    ),
    "LegIn": LegIn(1, Decimal("-100.00")),
    "MovementRequest": MOVEMENT_REQUEST,
    "LegOut": LegOut(1, "-100.00", BalanceOut(1, "50.00", "0.00")),
    "MoveResponse": MoveResponse(
        12,
        [
            LegOut(1, "-100.00", BalanceOut(1, "50.00", "0.00")),
            LegOut(2, "95.00", BalanceOut(2, "135.00", "0.00")),
            LegOut(3, "5.00", BalanceOut(3, "5.00", "0.00")),
        ],
        "order 77: payout and fee",
        {"order": "77"},
        LATER,
    ),
    "LimitsRequest": LimitsRequest(Decimal("100.00"), frozen=False),
    "LimitsResponse": LimitsResponse(1, "100.00", False, BalanceOut(1, "75.00", "0.00"), LATER),
    "BatchResult": BatchResult(201, {"transaction_id": 9, "user_id": 1, "amount": "10.00"}),
    "BatchResponse": BatchResponse(
        [
            BatchResult(201, msgspec.to_builtins(BATCH_DEPOSIT)),
            BatchResult(409, msgspec.to_builtins(INSUFFICIENT_PROBLEM)),
        ]
    ),
    "ServiceNameRequest": ServiceNameRequest("Delivery"),
    "ServiceOut": ServiceOut(5, "Delivery"),
    "ServiceList": ServiceList([ServiceOut(5, "Delivery")]),
    "ReportRequest": ReportRequest(2026, 11),
    "ReportLink": ReportLink("/v1/reports/revenue/2026-11.csv"),
    "HealthStatus": HealthStatus(
        "ready", DatabaseOut("primary", "10.0.0.5:5432", True), EVENTS_STATUS
    ),
    "EventsStatus": EVENTS_STATUS,
    "EventBalance": EventBalance(7, "60.00", "30.00"),
    "EventOut": TRANSFER_EVENT,
    "EventsPage": EventsPage([TRANSFER_EVENT], 1042),
    "DatabaseOut": DatabaseOut("primary", "10.0.0.5:5432", True),
    "ProblemField": ProblemField("amount", INSUFFICIENT),
    "Problem": INSUFFICIENT_PROBLEM,
}


def example(name: str) -> Any:
    """The JSON value of a schema's example (amounts as the strings clients send)."""
    return msgspec.to_builtins(EXAMPLES[name])
