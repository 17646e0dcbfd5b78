"""What the use cases need from the outside world. Adapters subclass these explicitly."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from application.statement_query import StatementQuery
from domain.account import UserAccount
from domain.ledger import JournalTransaction
from domain.money import Money
from domain.reservation import Reservation


class Clock(Protocol):
    def now(self) -> datetime: ...


class UserAccounts(Protocol):
    async def get(self, user_id: int) -> UserAccount | None:
        """The committed balances, without a lock: for reads only."""
        ...

    async def open(self, user_id: int) -> None:
        """Create the user's accounts if they do not exist; safe when called concurrently."""
        ...

    async def lock(self, user_ids: Sequence[int]) -> dict[int, UserAccount]:
        """Lock and load the given users (ascending id, so two writers never deadlock).

        Users that have no account are missing from the result.
        """
        ...

    async def save(self, account: UserAccount) -> None: ...


class Reservations(Protocol):
    async def get(self, order_id: int) -> Reservation | None: ...

    async def lock(self, order_id: int) -> Reservation | None: ...

    async def add(self, reservation: Reservation) -> None:
        """Raises `ConcurrentUpdate` when another transaction took the order id first."""
        ...

    async def close(self, reservation: Reservation) -> None:
        """Store the new status; only a reservation still open in the store may change."""
        ...


@dataclass(frozen=True, slots=True)
class RecordedTransaction:
    transaction_id: int
    created_at: datetime


class Journal(Protocol):
    async def record(self, transaction: JournalTransaction) -> RecordedTransaction: ...


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What a client was answered, replayed byte for byte for the same Idempotency-Key."""

    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    fingerprint: str
    response: StoredResponse


class IdempotencyKeys(Protocol):
    async def claim(self, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """Take the key for this transaction, or return the record of whoever took it.

        A transaction still running with the same key makes this wait for it, or
        raise `RequestInProgress` after the adapter's timeout.
        """
        ...

    async def complete(self, key: str, response: StoredResponse) -> None: ...


@dataclass(frozen=True, slots=True)
class StatementRow:
    """One entry of a user's account with its transaction's context, as stored."""

    entry_id: int
    transaction_id: int
    kind: str
    account: str
    amount: int
    balance_after: int
    created_at: datetime
    note: str | None
    service_id: int | None
    service_name: str | None
    order_id: int | None
    transaction_user_id: int | None
    counterparty_user_id: int | None


class Statements(Protocol):
    async def page(self, query: StatementQuery) -> list[StatementRow]:
        """Up to `query.limit + 1` rows in the query's order (one more tells there are more)."""
        ...

    async def count(self, query: StatementQuery) -> int: ...

    async def balances_at(self, user_id: int, instant: datetime) -> tuple[int, int]:
        """(available, reserved) in kopecks after the last entry at or before `instant`."""
        ...


@dataclass(frozen=True, slots=True)
class RevenueLine:
    service_id: int
    name: str
    total: Money


class ServiceCatalogue(Protocol):
    async def name(self, service_id: int, name: str) -> None:
        """Give the service a name, or a new one."""
        ...

    async def all(self) -> list[tuple[int, str]]:
        """Every named service, by id."""
        ...


class RevenueReports(Protocol):
    """Read in one consistent snapshot, so a report taken during traffic adds up."""

    async def totals(self, since: datetime, until: datetime) -> list[tuple[int, str | None, int]]:
        """(service id, name if any, kopecks recognized) for each service that earned."""
        ...


class RevenueReportWriter(Protocol):
    media_type: str
    extension: str

    def render(self, lines: Iterable[RevenueLine]) -> Iterator[str]:
        """The report piece by piece, so it can be streamed."""
        ...


class MovementObserver(Protocol):
    """Told of every money movement the runner applied or answered from a stored key."""

    def applied(self, kind: str, amount_kopecks: int | None) -> None: ...

    def replayed(self, kind: str) -> None: ...


class UnitOfWork(Protocol):
    """One database transaction. Leaving the block without `commit()` rolls back."""

    accounts: UserAccounts
    reservations: Reservations
    journal: Journal
    idempotency: IdempotencyKeys
    statements: Statements
    services: ServiceCatalogue

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...
