"""In-memory adapters: the same ports as PostgreSQL, with real rollback.

One lock serializes batches and units of work, which is what row locks give
PostgreSQL for the rows they touch. A batch works on copies; only commit
publishes them.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from adapters.memory.reports import InMemoryServiceCatalogue
from adapters.memory.statements import InMemoryStatements, JournalLines
from application.errors import ConcurrentUpdate
from application.events import Event, StoredEvent
from application.ports import (
    Changes,
    Clock,
    Events,
    IdempotencyRecord,
    Locked,
    MovementBatch,
    Reservations,
    Resource,
    UnitOfWork,
    UserAccounts,
)
from domain.account import UserAccount
from domain.ledger import JournalTransaction
from domain.reservation import Reservation


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)


_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass
class InMemoryStore:
    """The committed state, shared by every unit of work made from it."""

    clock: Clock = field(default_factory=SystemClock)
    accounts: dict[int, UserAccount] = field(default_factory=dict)
    opened_at: dict[int, datetime] = field(default_factory=dict)
    reservations: dict[int, Reservation] = field(default_factory=dict)
    transactions: JournalLines = field(default_factory=list)
    idempotency: dict[str, IdempotencyRecord | None] = field(default_factory=dict)
    services: dict[int, str] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    events: list[StoredEvent] = field(default_factory=list)
    latest: datetime = _NEVER
    """The latest batch's time: the next one's is never earlier, whatever the clock does
    (as PostgreSQL's batch time is never before its users' `updated_at`)."""

    def clear(self) -> None:
        """Empty, as a new store (ids from 1 again)."""
        for table in (self.accounts, self.opened_at, self.reservations, self.transactions,
                      self.idempotency, self.services, self.events):  # fmt: skip
            table.clear()
        self.ids = itertools.count(1)
        self.latest = _NEVER

    def moment(self) -> datetime:
        """A batch's time: the clock's, or the latest batch's if the clock went back."""
        self.latest = self.floor()
        return self.latest

    def floor(self) -> datetime:
        """The time a batch would take now (a read's, to tell a hold run out as the
        next batch would)."""
        return max(self.clock.now(), self.latest)


class InMemoryUserAccounts(UserAccounts):
    def __init__(self, committed: dict[int, UserAccount], opened_at: dict[int, datetime]) -> None:
        self._committed = committed
        self._opened_at = opened_at

    async def get(self, user_id: int) -> UserAccount | None:
        account = self._committed.get(user_id)
        return account.copy() if account else None

    async def opened(self, user_id: int) -> tuple[UserAccount, datetime] | None:
        account = await self.get(user_id)
        return (account, self._opened_at[user_id]) if account else None


class InMemoryReservations(Reservations):
    def __init__(self, committed: dict[int, Reservation], store: InMemoryStore) -> None:
        self._committed = committed
        self._clock = store.clock
        self._floor = store.floor

    async def get(self, order_id: int) -> tuple[Reservation | None, datetime]:
        found = self._committed.get(order_id)
        return (found.copy() if found else None), self._floor()

    async def due(self, limit: int) -> tuple[datetime, list[Reservation]]:
        now = self._clock.now()
        due = sorted(
            (r for r in self._committed.values() if r.is_due(now)),
            key=lambda r: (r.expires_at, r.order_id),
        )
        return now, [r.copy() for r in due[:limit]]


class InMemoryEvents(Events):
    def __init__(self, events: list[StoredEvent]) -> None:
        self._events = events

    async def after(
        self, event_id: int, limit: int, user_id: int | None = None
    ) -> list[StoredEvent]:
        start = bisect.bisect_right(self._events, event_id, key=lambda e: e.event_id)
        found = (e for e in self._events[start:] if user_id is None or e.event.user_id == user_id)
        return list(itertools.islice(found, limit))


def stored_events(
    events: Sequence[Event], transactions: dict[int, JournalTransaction], first: int, at: datetime
) -> list[StoredEvent]:
    """Events numbered from `first`, with their transaction's details, as a reader sees them."""
    stored = []
    for event_id, event in enumerate(events, start=first):
        tx = transactions.get(event.transaction_id or 0)
        if tx is None:
            stored.append(StoredEvent(event_id, event, at))
            continue
        counterparty = (
            tx.counterparty_user_id
            if tx.user_id == event.user_id
            else tx.user_id
            if tx.counterparty_user_id == event.user_id
            else None
        )
        details = (counterparty, tx.order_id, tx.service_id, tx.description, tx.metadata)
        stored.append(StoredEvent(event_id, event, at, *details))
    return stored


class InMemoryUnitOfWork(UnitOfWork):
    """Reads, and naming services: what a request outside a money movement does."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    async def __aenter__(self) -> Self:
        await self._store.lock.acquire()
        self.accounts = InMemoryUserAccounts(self._store.accounts, self._store.opened_at)
        self.reservations = InMemoryReservations(self._store.reservations, self._store)
        self.statements = InMemoryStatements(self._store.transactions, self._store.services)
        self.services = InMemoryServiceCatalogue(self._store.services)
        self.events = InMemoryEvents(self._store.events)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._store.lock.release()

    async def commit(self) -> None:
        self._store.services.update(self.services.changed)
        self.services.changed = {}


class InMemoryMovementBatch(MovementBatch):
    """A batch holds the store's lock from start to end, as row locks would, and
    publishes its changes only at commit."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._written: Changes | None = None

    async def __aenter__(self) -> Self:
        await self._store.lock.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._written = None
        self._store.lock.release()

    async def lock(
        self,
        user_ids: Sequence[int],
        order_ids: Sequence[int],
        keys: Sequence[str],
        movements: Sequence[str | None],
        *,
        wait_for: Resource | None = None,  # noqa: ARG002 - nothing is ever held elsewhere
        in_turn: bool = False,  # noqa: ARG002 - nor waited for
    ) -> Locked:
        """No row is ever busy: one lock serializes every batch."""
        store = self._store
        accounts, reservations = store.accounts, store.reservations
        locked = {o: reservations[o].copy() for o in order_ids if o in reservations}
        may_expire = sum(1 for r in locked.values() if r.is_open and r.expires_at)
        found = {key: store.idempotency.get(key) for key in keys}
        transactions = sum(1 for key in movements if key is None or found.get(key) is None)
        return Locked(
            accounts={u: accounts[u].copy() for u in user_ids if u in accounts},
            reservations=locked,
            answers={key: record for key, record in found.items() if record is not None},
            now=store.moment(),
            transaction_ids=[next(store.ids) for _ in range(transactions + may_expire)],
        )

    async def write(self, changes: Changes) -> None:
        store = self._store
        created = (
            [a.user_id for a in changes.opened if a.user_id in store.accounts]
            + [r.order_id for r in changes.added if r.order_id in store.reservations]
            + [key for key in changes.answers if store.idempotency.get(key) is not None]
        )
        if created:  # as a unique index would say (the lock makes it unreachable)
            raise ConcurrentUpdate(f"created meanwhile: {created}")
        self._written = changes

    async def commit(self) -> None:
        if self._written is None:
            return
        changes = self._written
        store = self._store
        for account in [*changes.opened, *changes.saved]:
            store.accounts[account.user_id] = account.copy()
        store.opened_at.update((a.user_id, changes.created_at) for a in changes.opened)
        for reservation in [*changes.added, *changes.closed]:
            store.reservations[reservation.order_id] = reservation.copy()
        at = changes.created_at
        store.transactions.extend((i, tx, at, caller) for i, tx, caller in changes.transactions)
        store.idempotency.update(changes.answers)
        store.events += stored_events(
            changes.events,
            {i: tx for i, tx, _ in changes.transactions},
            len(store.events) + 1,
            changes.created_at,
        )
        self._written = None
