"""The wire format of API.md: msgspec structs in and out. Amounts go out as strings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

MAX_ID = 2**63 - 1
Id = Annotated[int, Meta(ge=1, le=MAX_ID, description="Positive 64-bit integer id")]
Amount = Annotated[
    Decimal,
    Meta(
        description=(
            "Decimal rubles as a string or a number: > 0, at most 2 decimals, "
            "at most 10000000000000.00"
        ),
        examples=["150.25"],
    ),
]
Description = Annotated[
    str,
    Meta(max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$", description="Free text, no control chars"),
]
ExpiresAt = Annotated[
    datetime,
    Meta(
        tz=True,
        description=(
            "RFC 3339 with a zone, in the future, at most 90 days ahead: the money returns"
            " to available then, unless recognized or cancelled before"
        ),
    ),
]
MoneyOut = Annotated[str, Meta(description="Decimal rubles, two places", examples=["150.25"])]


class Request(Struct, forbid_unknown_fields=True):
    pass


class DepositRequest(Request):
    user_id: Id
    amount: Amount
    description: Description = ""


class WithdrawalRequest(DepositRequest):
    pass


class TransferRequest(Request):
    from_user_id: Id
    to_user_id: Id
    amount: Amount
    description: Description = ""


class ReservationRequest(Request):
    user_id: Id
    service_id: Id
    order_id: Id
    amount: Amount
    description: Description = ""
    expires_at: ExpiresAt | None = None


class RecognizeRequest(Request):
    user_id: Id
    service_id: Id
    amount: Amount


class CancelRequest(Request):
    user_id: Id
    service_id: Id


class BalanceOut(Struct, frozen=True):
    user_id: int
    available: MoneyOut
    reserved: MoneyOut


class MovementResponse(Struct, frozen=True):
    transaction_id: int
    user_id: int
    amount: MoneyOut
    balance: BalanceOut
    created_at: datetime


class TransferResponse(Struct, frozen=True):
    transaction_id: int
    from_user_id: int
    to_user_id: int
    amount: MoneyOut
    from_balance: BalanceOut
    to_balance: BalanceOut
    created_at: datetime


class ReservationResponse(Struct, frozen=True):
    order_id: int
    user_id: int
    service_id: int
    amount: MoneyOut
    status: Literal["reserved", "cancelled", "recognized", "expired"]
    created_at: datetime
    recognized_amount: MoneyOut | None = None
    closed_at: datetime | None = None
    balance: BalanceOut | None = None
    expires_at: Annotated[
        datetime | None, Meta(description="When the hold runs out; null: never")
    ] = None


class BalanceResponse(Struct, frozen=True):
    user_id: int
    available: MoneyOut
    reserved: MoneyOut
    total: MoneyOut
    currency: Literal["RUB"] = "RUB"


class StatementItem(Struct, frozen=True):
    id: int
    transaction_id: int
    kind: Literal[
        "deposit",
        "withdrawal",
        "transfer_in",
        "transfer_out",
        "reserve",
        "cancel",
        "recognize",
        "release",
        "expire",
    ]
    account: Literal["available", "reserved"]
    amount: Annotated[str, Meta(description="Signed decimal rubles: + in, - out")]
    balance_after: MoneyOut
    description: str
    created_at: datetime
    service_id: int | None = None
    service_name: str | None = None
    order_id: int | None = None
    counterparty_user_id: int | None = None


class StatementResponse(Struct, frozen=True):
    items: list[StatementItem]
    next_cursor: str | None = None
    total: int | None = None


KeyText = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=255,
        pattern=r"^[\x20-\x7e]+$",
        description="1..255 printable ASCII, with the Idempotency-Key header's meaning",
    ),
]
MAX_OPERATIONS = 1000


class DepositOperation(DepositRequest, tag="deposit", tag_field="op", omit_defaults=True):
    idempotency_key: KeyText = ""  # left out: no key (null is refused, as for description)


class WithdrawalOperation(WithdrawalRequest, tag="withdrawal", tag_field="op", omit_defaults=True):
    idempotency_key: KeyText = ""  # left out: no key (null is refused, as for description)


class TransferOperation(TransferRequest, tag="transfer", tag_field="op", omit_defaults=True):
    idempotency_key: KeyText = ""  # left out: no key (null is refused, as for description)


class ReserveOperation(ReservationRequest, tag="reserve", tag_field="op", omit_defaults=True):
    idempotency_key: KeyText = ""  # left out: no key (null is refused, as for description)


class RecognizeOperation(RecognizeRequest, tag="recognize", tag_field="op", omit_defaults=True):
    order_id: Id
    idempotency_key: KeyText = ""  # left out: no key (null is refused, as for description)


class CancelOperation(CancelRequest, tag="cancel", tag_field="op", omit_defaults=True):
    order_id: Id
    idempotency_key: KeyText = ""  # left out: no key (null is refused, as for description)


Operation = (
    DepositOperation
    | WithdrawalOperation
    | TransferOperation
    | ReserveOperation
    | RecognizeOperation
    | CancelOperation
)


class BatchRequest(Request):
    operations: Annotated[
        list[Operation],
        Meta(
            min_length=1,
            max_length=MAX_OPERATIONS,
            description="Applied in this order; each takes its single endpoint's fields",
        ),
    ]
    atomic: Annotated[
        bool, Meta(description="true: all or nothing; false: each operation stands alone")
    ] = False


class BatchResult(Struct, frozen=True):
    status: Annotated[int, Meta(description="What the single endpoint would have answered")]
    body: Annotated[
        dict[str, Any],
        Meta(
            description="Its body: the movement, reservation or problem, as that endpoint sends it"
        ),
    ]


class BatchResponse(Struct, frozen=True):
    results: list[BatchResult]


class ServiceNameRequest(Request):
    name: Annotated[
        str,
        Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"),
    ]


class ServiceOut(Struct, frozen=True):
    service_id: int
    name: str


class ServiceList(Struct, frozen=True):
    items: list[ServiceOut]


class ReportRequest(Request):
    year: int
    month: int


class ReportLink(Struct, frozen=True):
    url: str


class DatabaseOut(Struct, frozen=True):
    role: Annotated[str, Meta(description="primary (the one written to)")]
    server: Annotated[str, Meta(description="host:port of the server written to")]


class HealthStatus(Struct, frozen=True, omit_defaults=True):
    status: Literal["ok", "ready"]
    database: DatabaseOut | None = None


class ProblemField(Struct, frozen=True):
    field: str
    message: str


class Problem(Struct, frozen=True, omit_defaults=True):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemField] = msgspec.field(default_factory=list)
