"""In-memory adapters: the same ports as PostgreSQL, with real rollback.

One lock serializes units of work, which is what row locks give PostgreSQL
for the rows a unit touches. A unit works on copies; only commit publishes them.
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
from application.ports import (
    Clock,
    IdempotencyKeys,
    IdempotencyRecord,
    Journal,
    RecordedTransaction,
    Reservations,
    StoredResponse,
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
        self.changed: dict[int, UserAccount] = {}

    async def get(self, user_id: int) -> UserAccount | None:
        account = self.changed.get(user_id) or self._committed.get(user_id)
        return dataclasses.replace(account) if account else None

    async def open(self, user_id: int) -> None:
        if await self.get(user_id) is None:
            self.changed[user_id] = UserAccount.open(user_id)

    async def lock(self, user_ids: Sequence[int]) -> dict[int, UserAccount]:
        found = {uid: await self.get(uid) for uid in sorted(set(user_ids))}
        return {uid: account for uid, account in found.items() if account is not None}

    async def save(self, account: UserAccount) -> None:
        self.changed[account.user_id] = dataclasses.replace(account)


class InMemoryReservations(Reservations):
    def __init__(self, committed: dict[int, Reservation]) -> None:
        self._committed = committed
        self.changed: dict[int, Reservation] = {}

    async def get(self, order_id: int) -> Reservation | None:
        found = self.changed.get(order_id) or self._committed.get(order_id)
        return dataclasses.replace(found) if found else None

    async def lock(self, order_id: int) -> Reservation | None:
        return await self.get(order_id)

    async def add(self, reservation: Reservation) -> None:
        if await self.get(reservation.order_id) is not None:
            raise AssertionError(f"order {reservation.order_id} reserved twice in one unit")
        self.changed[reservation.order_id] = dataclasses.replace(reservation)

    async def close(self, reservation: Reservation) -> None:
        stored = await self.get(reservation.order_id)
        if stored is None or not stored.is_open:
            raise AssertionError(f"order {reservation.order_id} closed twice")
        self.changed[reservation.order_id] = dataclasses.replace(reservation)


class InMemoryJournal(Journal):
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self.recorded: list[tuple[int, JournalTransaction, datetime]] = []

    async def record(self, transaction: JournalTransaction) -> RecordedTransaction:
        transaction_id = next(self._store.ids)
        created_at = self._store.clock.now()
        self.recorded.append((transaction_id, transaction, created_at))
        return RecordedTransaction(transaction_id, created_at)


class InMemoryIdempotencyKeys(IdempotencyKeys):
    def __init__(self, committed: dict[str, IdempotencyRecord | None]) -> None:
        self._committed = committed
        self.changed: dict[str, IdempotencyRecord] = {}
        self._fingerprints: dict[str, str] = {}

    async def claim(self, key: str, fingerprint: str) -> IdempotencyRecord | None:
        record = self._committed.get(key)
        if record is not None:
            return record
        self._fingerprints[key] = fingerprint
        return None

    async def complete(self, key: str, response: StoredResponse) -> None:
        self.changed[key] = IdempotencyRecord(self._fingerprints[key], response)


class InMemoryUnitOfWork(UnitOfWork):
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    async def __aenter__(self) -> Self:
        await self._store.lock.acquire()
        self.accounts = InMemoryUserAccounts(self._store.accounts)
        self.reservations = InMemoryReservations(self._store.reservations)
        self.journal = InMemoryJournal(self._store)
        self.idempotency = InMemoryIdempotencyKeys(self._store.idempotency)
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
        store = self._store
        store.accounts.update(self.accounts.changed)
        store.reservations.update(self.reservations.changed)
        store.transactions.extend(self.journal.recorded)
        store.idempotency.update(self.idempotency.changed)
        store.services.update(self.services.changed)
        self.services.changed = {}
        self.accounts.changed, self.reservations.changed = {}, {}
        self.journal.recorded, self.idempotency.changed = [], {}
