"""An event on the wire: the JSON the pull API answers and the relay publishes, the same
bytes both ways. `docs/asyncapi.yaml` is generated from these structs
(`balance asyncapi`), and a test checks real messages against it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from application.events import StoredEvent
from domain.money import Money

CALLER_DESCRIPTION = (
    "The name of the token the request came with (BALANCE_API_TOKENS: token=scopes@name);"
    " null: an unnamed token, no auth, or the service's own doing (an expiry)"
)
Rubles = Annotated[str, Meta(description="Decimal rubles, two places", examples=["10.00"])]
EVENT_TYPES = (
    "deposit", "withdrawal", "transfer_out", "transfer_in", "reserve", "recognize", "cancel",
    "expire", "movement_out", "movement_in", "limits_changed",
)  # fmt: skip


class EventBalance(Struct, frozen=True):
    user_id: int
    available: Rubles
    reserved: Rubles


class EventOut(Struct, frozen=True):
    """What happened to one user: one per user a ledger transaction touches, one per
    limit change."""

    event_id: Annotated[
        int, Meta(description="Grows in commit order: once N is seen, never less after")
    ]
    type: Annotated[str, Meta(description=f"One of: {', '.join(EVENT_TYPES)}")]
    user_id: int
    user_seq: Annotated[int, Meta(description="1, 2, 3... per user, no gaps")]
    transaction_id: Annotated[int | None, Meta(description="None for limits_changed")]
    amount: Annotated[
        str,
        Meta(
            description="The operation's amount as the user sees it (recognize: the recognized"
            " part; the released rest shows in the deltas)"
        ),
    ]
    available_delta: Rubles
    reserved_delta: Rubles
    balance: Annotated[
        EventBalance, Meta(description="After the event: the previous balance plus the deltas")
    ]
    counterparty_user_id: int | None
    order_id: int | None
    service_id: int | None
    description: str | None
    metadata: dict[str, str]
    idempotency_key: Annotated[str | None, Meta(description="The request's Idempotency-Key")]
    occurred_at: datetime
    credit_limit: Annotated[Rubles | None, Meta(description="limits_changed only")] = None
    frozen: Annotated[bool | None, Meta(description="limits_changed only")] = None
    caller: Annotated[str | None, Meta(description=CALLER_DESCRIPTION)] = None


def _rubles(kopecks: int) -> str:
    return Money(kopecks).to_rubles()


def event_out(stored: StoredEvent) -> EventOut:
    e = stored.event
    return EventOut(
        event_id=stored.event_id,
        type=e.type,
        user_id=e.user_id,
        user_seq=e.user_seq,
        transaction_id=e.transaction_id,
        amount=_rubles(e.amount),
        available_delta=_rubles(e.available_delta),
        reserved_delta=_rubles(e.reserved_delta),
        balance=EventBalance(e.user_id, _rubles(e.available), _rubles(e.reserved)),
        counterparty_user_id=stored.counterparty_user_id,
        order_id=stored.order_id,
        service_id=stored.service_id,
        description=stored.description,
        metadata=dict(stored.metadata),
        idempotency_key=e.idempotency_key,
        occurred_at=stored.occurred_at,
        credit_limit=_rubles(e.credit_limit) if e.credit_limit is not None else None,
        frozen=e.frozen,
        caller=e.caller,
    )


_encoder = msgspec.json.Encoder()


def encode_event(stored: StoredEvent) -> bytes:
    return _encoder.encode(event_out(stored))
