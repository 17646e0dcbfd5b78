"""In-memory adapters: the same ports as PostgreSQL, with real rollback.

One lock serializes batches and units of work, which is what row locks give
PostgreSQL for the rows they touch. A batch works on copies; only commit
publishes them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from adapters.memory.reports import InMemoryServiceCatalogue
from adapters.memory.statements import InMemoryStatements
from application.errors import ConcurrentUpdate
from application.ports import (
    Changes,
    Clock,
    IdempotencyRecord,
    Locked,
    MovementBatch,
    Reservations,
    Stamp,
    UnitOfWork,
    UserAccounts,
)
from domain.account import UserAccount
from domain.ledger import JournalTransaction
from domain.reservation import Reservation


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class InMemoryStore:
    """The committed state, shared by every unit of work made from it."""

    clock: Clock = field(default_factory=SystemClock)
    accounts: dict[int, UserAccount] = field(default_factory=dict)
    reservations: dict[int, Reservation] = field(default_factory=dict)
    transactions: list[tuple[int, JournalTransaction, datetime]] = field(default_factory=list)
    idempotency: dict[str, IdempotencyRecord | None] = field(default_factory=dict)
    services: dict[int, str] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class InMemoryUserAccounts(UserAccounts):
    def __init__(self, committed: dict[int, UserAccount]) -> None:
        self._committed = committed

    async def get(self, user_id: int) -> UserAccount | None:
        account = self._committed.get(user_id)
        return dataclasses.replace(account) if account else None


class InMemoryReservations(Reservations):
    def __init__(self, committed: dict[int, Reservation], clock: Clock) -> None:
        self._committed = committed
        self._clock = clock

    async def get(self, order_id: int) -> Reservation | None:
        found = self._committed.get(order_id)
        return dataclasses.replace(found) if found else None

    async def due(self, limit: int) -> tuple[datetime, list[Reservation]]:
        now = self._clock.now()
        due = sorted(
            (r for r in self._committed.values() if r.is_due(now)),
            key=lambda r: (r.expires_at, r.order_id),
        )
        return now, [dataclasses.replace(r) for r in due[:limit]]


class InMemoryUnitOfWork(UnitOfWork):
    """Reads, and naming services: what a request outside a money movement does."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    async def __aenter__(self) -> Self:
        await self._store.lock.acquire()
        self.accounts = InMemoryUserAccounts(self._store.accounts)
        self.reservations = InMemoryReservations(self._store.reservations, self._store.clock)
        self.statements = InMemoryStatements(self._store.transactions, self._store.services)
        self.services = InMemoryServiceCatalogue(self._store.services)
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
        self._written: tuple[Changes, Stamp] | None = None

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

    async def answers(self, keys: Sequence[str]) -> dict[str, IdempotencyRecord]:
        found = {key: self._store.idempotency.get(key) for key in keys}
        return {key: record for key, record in found.items() if record is not None}

    async def lock(self, user_ids: Sequence[int], order_ids: Sequence[int]) -> Locked:
        accounts, reservations = self._store.accounts, self._store.reservations
        return Locked(
            {u: dataclasses.replace(accounts[u]) for u in user_ids if u in accounts},
            {o: dataclasses.replace(reservations[o]) for o in order_ids if o in reservations},
        )

    async def stamp(self, transactions: int) -> Stamp:
        ids = [next(self._store.ids) for _ in range(transactions)]
        return Stamp(self._store.clock.now(), ids)

    async def write(self, changes: Changes, stamp: Stamp) -> None:
        store = self._store
        created = (
            [a.user_id for a in changes.opened if a.user_id in store.accounts]
            + [r.order_id for r in changes.added if r.order_id in store.reservations]
            + [key for key in changes.answers if store.idempotency.get(key) is not None]
        )
        if created:  # as a unique index would say (the lock makes it unreachable)
            raise ConcurrentUpdate(f"created meanwhile: {created}")
        self._written = (changes, stamp)

    async def commit(self) -> None:
        if self._written is None:
            return
        changes, stamp = self._written
        store = self._store
        for account in [*changes.opened, *changes.saved]:
            store.accounts[account.user_id] = dataclasses.replace(account)
        for reservation in [*changes.added, *changes.closed]:
            store.reservations[reservation.order_id] = dataclasses.replace(reservation)
        store.transactions.extend((i, tx, stamp.created_at) for i, tx in changes.transactions)
        store.idempotency.update(changes.answers)
        self._written = None
