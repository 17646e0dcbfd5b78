"""The wire format of API.md: msgspec structs in and out. Amounts go out as strings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import Meta, Struct

from adapters.event_message import CALLER_DESCRIPTION, EventOut

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
SignedAmount = Annotated[
    Decimal,
    Meta(
        description=(
            "Signed decimal rubles as a string or a number: negative leaves the user, positive"
            " arrives; not zero, at most 2 decimals, at most 10000000000000.00 either way"
        ),
        examples=["-100.00"],
    ),
]
MAX_METADATA_KEYS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 20, 40, 500
METADATA_KEY = r"^[A-Za-z0-9_.-]+$"
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
# Text with something to read: not only spaces, and no control character anywhere.
SOME_TEXT = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
PRINTABLE_ASCII = r"^[\x20-\x7e]+$"
Metadata = Annotated[
    dict[
        Annotated[str, Meta(min_length=1, max_length=MAX_METADATA_KEY, pattern=METADATA_KEY)],
        Annotated[str, Meta(max_length=MAX_METADATA_VALUE, pattern=NO_CONTROL)],
    ],
    Meta(
        max_length=MAX_METADATA_KEYS,
        description=(
            "Your tags: up to 20 string keys (1..40 of A-Z a-z 0-9 _ . -) to string values"
            " (up to 500 characters, no control characters); stored with the ledger"
            " transaction, returned with it, and a statement filter (`?metadata.<key>=<value>`)"
        ),
        examples=[{"order": "77"}],
    ),
]
MetadataOut = Annotated[dict[str, str], Meta(description="The request's metadata")]


class Request(Struct, forbid_unknown_fields=True):
    pass


class DepositRequest(Request):
    user_id: Id
    amount: Amount
    description: Description = ""
    metadata: Metadata = msgspec.field(default_factory=dict)


class WithdrawalRequest(DepositRequest):
    pass


class TransferRequest(Request):
    from_user_id: Id
    to_user_id: Id
    amount: Amount
    description: Description = ""
    metadata: Metadata = msgspec.field(default_factory=dict)


class ReservationRequest(Request):
    user_id: Id
    service_id: Id
    order_id: Id
    amount: Amount
    description: Description = ""
    expires_at: ExpiresAt | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)


class RecognizeRequest(Request):
    user_id: Id
    service_id: Id
    amount: Amount
    metadata: Metadata = msgspec.field(default_factory=dict)


class CancelRequest(Request):
    user_id: Id
    service_id: Id
    metadata: Metadata = msgspec.field(default_factory=dict)


class LegIn(Request):
    user_id: Id
    amount: SignedAmount


class MovementRequest(Request):
    legs: Annotated[
        list[LegIn],
        Meta(
            min_length=2,
            max_length=100,
            description="2..100 legs, a user at most once, the amounts summing to exactly 0",
        ),
    ]
    description: Description = ""
    metadata: Metadata = msgspec.field(default_factory=dict)


class LimitsRequest(Request):
    credit_limit: Annotated[
        Decimal,
        Meta(
            description=(
                "How far below zero the available balance may go: decimal rubles, 0 or more,"
                " at most 2 decimals, at most 10000000000000.00"
            ),
            examples=["100.00"],
        ),
    ]
    frozen: Annotated[bool, Meta(description="true: every debit is refused (409 account-frozen)")]


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
    metadata: MetadataOut = msgspec.field(default_factory=dict)


class TransferResponse(Struct, frozen=True):
    transaction_id: int
    from_user_id: int
    to_user_id: int
    amount: MoneyOut
    from_balance: BalanceOut
    to_balance: BalanceOut
    created_at: datetime
    metadata: MetadataOut = msgspec.field(default_factory=dict)


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
    metadata: MetadataOut = msgspec.field(default_factory=dict)


class LegOut(Struct, frozen=True):
    user_id: int
    amount: Annotated[str, Meta(description="Signed decimal rubles", examples=["-100.00"])]
    balance: BalanceOut


class MoveResponse(Struct, frozen=True):
    transaction_id: int
    legs: list[LegOut]
    description: str | None
    metadata: MetadataOut
    created_at: datetime


class LimitsResponse(Struct, frozen=True):
    user_id: int
    credit_limit: MoneyOut
    frozen: bool
    balance: BalanceOut
    updated_at: Annotated[datetime, Meta(description="When the limits last changed")]


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
        "movement_out",
        "movement_in",
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
    metadata: MetadataOut = msgspec.field(default_factory=dict)
    caller: Annotated[str | None, Meta(description=CALLER_DESCRIPTION)] = None


class StatementResponse(Struct, frozen=True):
    items: list[StatementItem]
    next_cursor: str | None = None
    total: int | None = None


KeyText = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=255,
        pattern=PRINTABLE_ASCII,
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


class RecognizeOperation(
    RecognizeRequest, tag="recognize", tag_field="op", omit_defaults=True, kw_only=True
):
    order_id: Id
    idempotency_key: KeyText = ""  # left out: no key (null is refused, as for description)


class CancelOperation(
    CancelRequest, tag="cancel", tag_field="op", omit_defaults=True, kw_only=True
):
    order_id: Id
    idempotency_key: KeyText = ""  # left out: no key (null is refused, as for description)


class MovementOperation(MovementRequest, tag="movement", tag_field="op", omit_defaults=True):
    idempotency_key: KeyText = ""  # left out: no key (null is refused, as for description)


Operation = (
    DepositOperation
    | WithdrawalOperation
    | TransferOperation
    | ReserveOperation
    | RecognizeOperation
    | CancelOperation
    | MovementOperation
)
OPERATIONS = tuple(str(kind.__struct_config__.tag) for kind in get_args(Operation))
"""A batch operation's `op`s, in the union's order."""


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
        Meta(min_length=1, max_length=200, pattern=SOME_TEXT),
    ]


class ServiceOut(Struct, frozen=True):
    service_id: int
    name: str


class ServiceList(Struct, frozen=True):
    items: list[ServiceOut]


class ReportRequest(Request):
    year: Annotated[int, Meta(ge=2000, le=9998, description="2000..9998")]
    month: Annotated[int, Meta(ge=1, le=12, description="1..12")]


class ReportLink(Struct, frozen=True):
    url: str


class DatabaseOut(Struct, frozen=True, omit_defaults=True):
    role: Annotated[str, Meta(description="primary (the one written to)")]
    server: Annotated[str, Meta(description="host:port of the server written to")]
    synchronous_standby: Annotated[
        bool | None,
        Meta(
            description="Whether a commit waits for a synchronous standby: false, an"
            " acknowledged movement is on one server only (a standby lost, or none"
            " configured); absent without a database server (the memory store)"
        ),
    ] = None
    schema: Annotated[
        str | None,
        Meta(
            description="The schema's revision (migrations/versions); absent without a"
            " database server"
        ),
    ] = None
    code_schema: Annotated[
        str | None,
        Meta(
            description="The newest revision this code knows: a schema ahead of it is a"
            " later version's, mid-deploy, which keeps this code working"
        ),
    ] = None


class EventsStatus(Struct, frozen=True):
    unsent: Annotated[int, Meta(description="Events committed, not yet confirmed by the broker")]
    oldest_unsent_seconds: float
    relay: Annotated[str | None, Meta(description="host:pid of the relay holding the lease")]
    broker: Annotated[
        str,
        Meta(description="connected, unreachable: <why>, connecting, or no relay (pull API only)"),
    ]


class HealthStatus(Struct, frozen=True, omit_defaults=True):
    status: Literal["ok", "ready"]
    database: DatabaseOut | None = None
    events: EventsStatus | None = None


class ProblemField(Struct, frozen=True):
    field: str
    message: str


class Problem(Struct, frozen=True, omit_defaults=True):
    """RFC 9457 problem details; insufficient funds also say the numbers."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemField] = msgspec.field(default_factory=list)
    available: Annotated[str | None, Meta(description="insufficient-funds: rubles")] = None
    credit_limit: Annotated[str | None, Meta(description="insufficient-funds: rubles")] = None
    requested: Annotated[str | None, Meta(description="insufficient-funds: rubles")] = None


class EventsPage(Struct, frozen=True):
    items: list[EventOut]
    next_after: Annotated[
        int, Meta(description="The last item's event_id (or `after` when none): the next `after`")
    ]
