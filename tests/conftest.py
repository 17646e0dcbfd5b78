from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

import pytest

from adapters.memory.reports import InMemoryRevenueReports
from adapters.memory.store import InMemoryMovementBatch, InMemoryStore, InMemoryUnitOfWork
from adapters.postgres.engine import create_engine, migrate
from adapters.postgres.movements import PostgresMovementBatch
from adapters.postgres.reports import PostgresRevenueReports
from adapters.postgres.session import Engine
from adapters.postgres.uow import PostgresUnitOfWork
from application.ports import MovementBatch, RevenueReports, UnitOfWork
from application.runner import MoneyMovements
from application.sweeper import Sweeper
from tests import postgres
from tests.ledger_view import LedgerView, MemoryLedgerView, PostgresLedgerView


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    with postgres.server_url() as url:
        yield url


@pytest.fixture
def database(pg_server: str) -> Iterator[str]:
    """A database of this test's own, not migrated (a server started on it migrates it),
    dropped at the end."""
    name = postgres.unique_name()
    url = asyncio.run(postgres.create_database(pg_server, name))
    yield url
    asyncio.run(postgres.drop_database(pg_server, name))


@pytest.fixture(scope="session")
async def pg_url(pg_server: str) -> AsyncIterator[str]:
    """A database of this run's own, migrated to head, dropped at the end."""
    name = postgres.unique_name()
    url = await postgres.create_database(pg_server, name)
    await migrate(url)
    yield url
    await postgres.drop_database(pg_server, name)


@pytest.fixture(scope="session")
async def pg_engine(pg_url: str) -> AsyncIterator[Engine]:
    engine = create_engine(pg_url, pool_size=40)
    yield engine
    await engine.dispose()


@dataclass
class Adapter:
    """One store under test: how to open a unit of work or a batch, and how to read the
    whole ledger."""

    name: str
    uow: Callable[[], UnitOfWork]
    view: LedgerView
    reset: Callable[[], Awaitable[None]]
    revenue: Callable[[], RevenueReports]
    batch: Callable[[], MovementBatch]
    make_due: Callable[[int], Awaitable[None]]
    """Move a reservation's expires_at to just past now, on the store's clock."""
    written_ahead: Callable[[timedelta, int], Awaitable[None]]
    """A user's ledger so far as a clock that far ahead of the store's wrote it."""

    @cached_property
    def workers(self) -> list[MoneyMovements]:
        """Two batchers, as two worker processes have: concurrent commands share batches
        within a worker and race for rows between them."""
        return [MoneyMovements(self.batch, max_in_flight=4) for _ in range(2)]

    @property
    def movements(self) -> MoneyMovements:
        return self.workers[0]

    def sweeper(self, worker: int = 0) -> Sweeper:
        return Sweeper(self.uow, self.workers[worker], overdue=lambda seconds: None)


def memory() -> Adapter:
    store = InMemoryStore()

    async def make_due(order_id: int) -> None:
        store.reservations[order_id].expires_at = store.clock.now() - timedelta(milliseconds=1)

    async def reset() -> None:
        store.clear()

    async def written_ahead(ahead: timedelta, user_id: int) -> None:
        theirs = [(i, t, at + ahead if user_id in (t.user_id, t.counterparty_user_id) else at, c)
                  for i, t, at, c in store.transactions]  # fmt: skip
        store.transactions[:] = theirs
        store.latest = max([store.latest, *(at for _, _, at, _ in theirs)])

    return Adapter(
        "memory",
        lambda: InMemoryUnitOfWork(store),
        MemoryLedgerView(store),
        reset,
        lambda: InMemoryRevenueReports(store.transactions, store.services),
        lambda: InMemoryMovementBatch(store),
        make_due,
        written_ahead,
    )


async def on_postgres(url: str, engine: Engine) -> Adapter:
    async def reset() -> None:
        await postgres.truncate(url)

    await reset()
    return Adapter(
        "postgres",
        lambda: PostgresUnitOfWork(engine),
        PostgresLedgerView(url),
        reset,
        lambda: PostgresRevenueReports(engine),
        lambda: PostgresMovementBatch(engine),
        lambda order_id: postgres.make_due(url, order_id),
        lambda ahead, user_id: postgres.written_ahead(url, ahead, user_id),
    )


@pytest.fixture
async def pg_adapter(pg_url: str, pg_engine: Engine) -> Adapter:
    return await on_postgres(pg_url, pg_engine)


@pytest.fixture(params=["memory", "postgres"])
def adapter(request: pytest.FixtureRequest) -> Adapter:
    """The contract suite runs every test on both adapters; the memory half starts no
    database (`make test-fast`). Synchronous, so that it may ask for the PostgreSQL
    fixtures (asynchronous) only when it needs them."""
    if request.param == "memory":
        return memory()
    found: Adapter = request.getfixturevalue("pg_adapter")
    return found


_NEEDS_POSTGRES = {"pg_server", "pg_url", "pg_engine", "pg_adapter"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `postgres` every test that starts or uses a PostgreSQL server, so
    `-m "not postgres"` (make test-fast) runs the rest with no database and no network."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        on_postgres_half = callspec is not None and "postgres" in callspec.params.values()
        if fixtures & _NEEDS_POSTGRES or on_postgres_half:
            item.add_marker(pytest.mark.postgres)
