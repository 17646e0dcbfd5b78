"""What the use cases need from the outside world. Adapters subclass these explicitly."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Literal, Protocol, Self

from application.events import Event, StoredEvent
from application.relay import OutboxState
from application.statement_query import StatementQuery
from domain.account import UserAccount
from domain.ledger import JournalTransaction, Metadata
from domain.money import Money
from domain.reservation import Reservation

Resource = tuple[Literal["user", "order"], int]
"""A row a batch locks: a user's account row, or an order's reservation row."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class UserAccounts(Protocol):
    async def get(self, user_id: int) -> UserAccount | None:
        """The committed balances and limits, without a lock: for reads only."""
        ...

    async def opened(self, user_id: int) -> tuple[UserAccount, datetime] | None:
        """The account as `get` reads it, and when it was opened."""
        ...


class Reservations(Protocol):
    async def get(self, order_id: int) -> tuple[Reservation | None, datetime]:
        """The reservation, and the time its owner's next batch would take as it was
        read (the store's clock, or later: the one clock that decides whether a hold ran
        out)."""
        ...

    async def due(self, limit: int) -> tuple[datetime, list[Reservation]]:
        """The store's clock now, and up to `limit` open reservations due by it,
        the longest overdue first."""
        ...


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What a client was answered, replayed byte for byte for the same Idempotency-Key."""

    status: int
    body: bytes
    replayed: bool = field(default=False, compare=False)
    """Sent again under its key, not answered now (`Idempotent-Replayed: true`)."""


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    fingerprint: str
    response: StoredResponse


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    """What a readiness check found: the server written to, its role, what is wrong."""

    role: str
    server: str
    problem: str | None = None
    events: OutboxState | None = None
    """The outbox and its relay, when the store keeps one."""
    synchronous: bool | None = None
    """Whether a commit waits for a synchronous standby (False: an acknowledged movement
    is on one server only); None where there is no such thing (the memory store)."""
    schema: str | None = None
    """The schema's revision, and `code_schema` the newest this code knows (a schema
    ahead of it is a later version's, mid-deploy); None without a database server."""
    code_schema: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedTransaction:
    transaction_id: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Locked:
    """What a batch read as it began: the rows it locked, the answers stored under its
    keys, the rows it could not lock, and its stamp.

    The stamp is taken after the locks: the batch's time, and an id for each
    transaction it may record. A later batch on the same rows gets a later time and
    higher ids, so a user's entries are in the same order by time and by id.
    `busy_users` and `busy_orders` exist but are locked by another transaction: the
    requests that need them wait for a batch of their own."""

    accounts: dict[int, UserAccount]
    reservations: dict[int, Reservation]
    answers: dict[str, IdempotencyRecord]
    now: datetime
    transaction_ids: list[int]
    busy_users: frozenset[int] = frozenset()
    busy_orders: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Changes:
    """Everything one batch writes, in final form: each row once."""

    opened: list[UserAccount]
    saved: list[UserAccount]
    transactions: list[tuple[int, JournalTransaction, str | None]]
    """(transaction id, transaction, the caller's name)."""
    events: list[Event]
    """Numbered by the store as it writes them (event_id, in commit order)."""
    added: list[Reservation]
    closed: list[Reservation]
    answers: dict[str, IdempotencyRecord]
    created_at: datetime

    def __bool__(self) -> bool:
        return bool(self.transactions or self.answers or self.saved or self.opened)


class MovementBatch(Protocol):
    """One database transaction applying one batch of money movements.

    Leaving the block without `commit()` rolls back. `write` raises
    `ConcurrentUpdate` when a row it creates (an account, a reservation, an
    idempotency key) was created meanwhile by another transaction: nothing is
    then written, and the batch is run again on what is now there.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def lock(
        self,
        user_ids: Sequence[int],
        order_ids: Sequence[int],
        keys: Sequence[str],
        movements: Sequence[str | None],
        *,
        wait_for: Resource | None = None,
        in_turn: bool = False,
    ) -> Locked:
        """Open the transaction; lock these users, then these orders, skipping rows
        another transaction holds (reported busy); read the answers stored under
        these keys; stamp the batch with an id for each movement (given by its key or
        None) that has no stored answer, and for each locked reservation that may
        expire. Missing rows are left out.

        `in_turn`: wait for the rows another transaction holds rather than skip them,
        each for as long as a batch takes to commit (a fraction of a second), and
        raise `RowsContended` past that. Every batch locks in the same order (users,
        then orders, each ascending), so batches waiting in turn never deadlock.

        `wait_for`: first wait for that one row, holding nothing else, so a batch
        waits for at most one row and never while it holds another (no deadlock,
        and no one waits behind it but for that row). A wait past the lock timeout
        raises `RowsBusy`."""
        ...

    async def write(self, changes: Changes) -> None: ...

    async def commit(self) -> None: ...


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
    metadata: Metadata = ()
    caller: str | None = None
    """The name of the token its transaction was made with (None: unnamed, no auth, or
    the service's own doing)."""


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
    """Told of every money movement the runner applied or answered from a stored key,
    and of every batch it committed."""

    def applied(self, kind: str, caller: str | None, movements: int, kopecks: int) -> None:
        """A batch applied this many movements of a kind for a caller (its name, None
        for none), moving this much in all (a kind that moves no fixed amount, e.g. a
        recognition of the rest, counts 0)."""
        ...

    def replayed(self, kind: str) -> None: ...

    def committed(self, movements: int) -> None:
        """A database transaction committed with this many commands in it."""
        ...

    def expired(self, reservations: int) -> None:
        """A batch committed, expiring this many reservations."""
        ...

    def shed(self, requests: int) -> None:
        """This many requests waited in the queue past its limit and were not run."""
        ...


class Events(Protocol):
    """The outbox, read: events in `event_id` order (commit order)."""

    async def after(
        self, event_id: int, limit: int, user_id: int | None = None
    ) -> list[StoredEvent]:
        """Up to `limit` events numbered above `event_id` (of one user, if given)."""
        ...


class UnitOfWork(Protocol):
    """Reads, and naming services: money moves only through a `MovementBatch`.
    Leaving the block without `commit()` rolls back."""

    accounts: UserAccounts
    reservations: Reservations
    statements: Statements
    services: ServiceCatalogue
    events: Events

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...
