"""Events: what happened to each user, written by the batch that did it (the outbox).

Every ledger transaction gives one event per user it touches (a transfer: two), and
every limit change one, in the order the batch applied them. For each user,
`user_seq` counts 1, 2, 3... with no gaps (the account row keeps the last one, under
the lock the batch holds), and each event's balance is the previous one's plus its
deltas. The store numbers events (`event_id`) in commit order as it writes them.
Amounts are kopecks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from domain.account import UserAccount
from domain.ledger import AccountKind, EntryKind, JournalTransaction, Metadata, TransactionKind

if TYPE_CHECKING:
    from application.ports import UnitOfWork

LIMITS_CHANGED = "limits_changed"


class Event(NamedTuple):
    """One user's side of one thing that happened, as the batch writes it (a tuple:
    the store writes it as a row, with no copy)."""

    type: str
    user_id: int
    user_seq: int
    transaction_id: int | None
    amount: int
    available_delta: int
    reserved_delta: int
    available: int
    reserved: int
    idempotency_key: str | None
    credit_limit: int | None = None
    frozen: bool | None = None
    caller: str | None = None
    """The name of the token the request came with (None: unnamed, no auth, or the
    service's own doing, as an expiry)."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as readers get it: numbered, timed, with its transaction's details."""

    event_id: int
    event: Event
    occurred_at: datetime
    counterparty_user_id: int | None = None
    order_id: int | None = None
    service_id: int | None = None
    description: str | None = None
    metadata: Metadata = ()


Happening = tuple[int, JournalTransaction | UserAccount, str | None, str | None]
"""What a batch did, in order: (transaction id, the transaction, the request's key, its
caller), or (0, the account as its limits were set, the key, the caller)."""


def events_of(
    log: Sequence[Happening],
    before: Mapping[int, UserAccount],
    after: Mapping[int, UserAccount],
) -> list[Event]:
    """The events of a batch's log. `before`: the accounts as the batch locked them
    (a user missing had none); `after`: as it leaves them, whose `event_seq` is set to
    the user's last event's."""
    state: dict[int, list[int]] = {}  # user: [available, reserved, seq]

    def running(user_id: int) -> list[int]:
        found = state.get(user_id)
        if found is None:
            account = before.get(user_id)
            found = (
                [account.available.kopecks, account.reserved.kopecks, account.event_seq]
                if account is not None
                else [0, 0, 0]
            )
            state[user_id] = found
        return found

    events: list[Event] = []
    for transaction_id, what, key, caller in log:
        if isinstance(what, UserAccount):
            now = running(what.user_id)
            now[2] += 1
            limits = (what.credit_limit.kopecks, what.frozen)
            happened = (LIMITS_CHANGED, what.user_id, now[2], None, 0, 0, 0, now[0], now[1], key)
            events.append(Event(*happened, *limits, caller))
            continue
        for user_id, (kind, amount, available, reserved) in _sides(what).items():
            now = running(user_id)
            now[0] += available
            now[1] += reserved
            now[2] += 1
            side = (kind, user_id, now[2], transaction_id, amount, available, reserved)
            events.append(Event(*side, now[0], now[1], key, None, None, caller))
    for user_id, (_, _, seq) in state.items():
        after[user_id].event_seq = seq
    return events


_PER_USER = (TransactionKind.TRANSFER, TransactionKind.MOVEMENT)


def _sides(tx: JournalTransaction) -> dict[int, tuple[str, int, int, int]]:
    """Each user's (type, amount, available delta, reserved delta), in posting order."""
    sides: dict[int, list[int]] = {}  # user: [available, reserved, recognized]
    kinds: dict[int, EntryKind] = {}
    for posting in tx.postings:
        user_id = posting.account.user_id
        if user_id is None:
            continue
        side = sides.get(user_id)
        if side is None:
            side = sides[user_id] = [0, 0, 0]
            kinds[user_id] = posting.kind
        amount = posting.amount.kopecks
        if posting.account.kind is AccountKind.AVAILABLE:
            side[0] += amount
        else:
            side[1] += amount
        if posting.kind is EntryKind.RECOGNIZE:
            side[2] -= amount
    found = {}
    for user_id, (available, reserved, recognized) in sides.items():
        kind: str = kinds[user_id] if tx.kind in _PER_USER else tx.kind
        if tx.kind is TransactionKind.RECOGNIZE:
            amount = recognized
        elif tx.kind is TransactionKind.RESERVE:
            amount = reserved
        elif tx.kind in (TransactionKind.CANCEL, TransactionKind.EXPIRE):
            amount = -reserved
        else:
            amount = abs(available)
        found[user_id] = (kind, amount, available, reserved)
    return found


MAX_EVENTS_PAGE = 1000


async def events_after(
    units: Callable[[], UnitOfWork], after: int, limit: int, user_id: int | None = None
) -> list[StoredEvent]:
    """The pull API: events numbered above `after` in commit order, of one user if given."""
    async with units() as uow:
        return await uow.events.after(after, limit, user_id)
