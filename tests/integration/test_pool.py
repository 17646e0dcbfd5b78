"""The worker's connections are handed out in the order they were asked for, and a
wait for one has an end."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import pytest

from adapters.postgres.engine import create_engine
from adapters.postgres.movements import PostgresMovementBatch
from adapters.postgres.session import Session
from application.deposit import Deposit, deposit
from application.errors import StoreUnavailable
from application.runner import MoneyMovements
from tests.helpers import keep, rub
from tests.postgres import silent_server

pytestmark = pytest.mark.postgres


async def test_connections_go_to_the_waiters_in_the_order_they_asked(pg_url: str) -> None:
    """A request that gives its connection back and at once asks again (a worker's
    next read) queues behind those already waiting. SQLAlchemy's pool, used before,
    let it take the connection back before the waiter it woke ran: one task then
    held the only connection for all its rounds (`aaaaabbbbb...`), and under load a
    request could lose its turn again and again."""
    engine = create_engine(pg_url, pool_size=1)
    served: list[str] = []

    async def reader(name: str) -> None:
        for _ in range(5):
            async with Session(engine) as session:
                served.append(name)
                await session.db.connection.fetchval("SELECT 1")

    try:
        await asyncio.gather(*(reader(name) for name in "abcd"))
    finally:
        await engine.dispose()
    assert "".join(served) == "abcd" * 5


async def test_a_request_that_finds_no_connection_in_time_is_told_so(pg_url: str) -> None:
    engine = create_engine(pg_url, pool_size=1, wait=0.2)
    try:
        async with Session(engine):
            with pytest.raises(StoreUnavailable, match="no database connection free"):
                async with Session(engine):
                    pass
        async with Session(engine) as session:  # the refused wait took nothing with it
            assert await session.db.connection.fetchval("SELECT 1") == 1
    finally:
        await engine.dispose()


async def test_requests_cancelled_waiting_or_holding_give_their_turn_back(pg_url: str) -> None:
    """A client that hangs up cancels its request: whether it was waiting for a
    connection or holding one, the connection goes to the next request."""
    engine = create_engine(pg_url, pool_size=1, wait=2)
    holding = asyncio.Event()

    async def hold() -> None:
        async with Session(engine) as session:
            holding.set()
            await session.db.connection.fetchval("SELECT pg_sleep(30)")

    async def read() -> int:
        async with Session(engine) as session:
            return int(await session.db.connection.fetchval("SELECT 1"))

    try:
        holder = asyncio.create_task(hold())
        await holding.wait()
        waiter = asyncio.create_task(read())
        await asyncio.sleep(0.05)
        waiter.cancel()
        holder.cancel()
        for task in (waiter, holder):
            with pytest.raises(asyncio.CancelledError):
                await task
        assert await asyncio.wait_for(read(), 5) == 1
        assert engine.checked_out() == 0
    finally:
        await engine.dispose()


@pytest.mark.parametrize("wrong", ["database", "port"])
async def test_a_connection_that_cannot_be_opened_is_store_unavailable(
    pg_url: str, wrong: str
) -> None:
    """No server on the port, or a server that refuses (here: no such database): the
    request is told the store is unavailable (503), never an unexpected error (500),
    and the refused attempt takes no turn with it."""
    parts = urlsplit(pg_url)
    if wrong == "database":
        url = urlunsplit(parts._replace(path="/no_such_database_here"))
    elif "host=" in parts.query:  # a unix socket folder (the embedded server): one empty
        url = urlunsplit(parts._replace(query="host=/nonexistent-balance-socket-folder"))
    else:
        user = f"{parts.username}@" if parts.username else ""
        url = urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:9"))
    engine = create_engine(url, pool_size=1, wait=1)
    try:
        for _ in range(2):
            with pytest.raises(StoreUnavailable, match="database unreachable"):
                async with Session(engine):
                    pass
        assert engine.checked_out() == 0
    finally:
        await engine.dispose()


async def test_a_server_that_never_answers_is_unavailable_within_seconds() -> None:
    """A host gone without a word refuses nothing. Opening a connection gives up after
    `connect_timeout` (asyncpg's own default is 60 s), so the request is answered 503
    in seconds, and the attempt takes no turn with it."""
    async with silent_server() as (url, held):
        engine = create_engine(url, pool_size=1, connect_timeout=0.5)
        try:
            started = asyncio.get_running_loop().time()
            with pytest.raises(StoreUnavailable, match="database unreachable: TimeoutError"):
                async with Session(engine):
                    pass
            assert asyncio.get_running_loop().time() - started < 5
            assert held, "the listener was never reached"
            assert engine.checked_out() == 0
        finally:
            await engine.dispose()


@pytest.mark.parametrize(("retry_within", "connects"), [(0.3, 1), (30.0, 4)])
async def test_a_batch_tries_a_server_that_never_answers_once_not_four_times(
    retry_within: float, connects: int
) -> None:
    """An attempt that took its time to fail is not made again: a second connect would
    hang as long. Each attempt's connect reaches the listener once, so the listener
    counts the attempts: one past the batch's time for retries, four (all of them)
    while every failure comes within it."""
    async with silent_server() as (url, held):
        # No rest after a timed-out connect here: the engine would answer the later
        # attempts without connecting (the test below), and the count shows the batch's.
        engine = create_engine(url, pool_size=1, connect_timeout=0.5, rest_after_timeout=0)
        runner = MoneyMovements(
            lambda: PostgresMovementBatch(engine), retry_within=retry_within, backoff=0
        )
        try:
            started = asyncio.get_running_loop().time()
            with pytest.raises(StoreUnavailable, match="database unreachable: TimeoutError"):
                await runner.execute(deposit, Deposit(1, rub("5")), keep, "hung-1")
            took = asyncio.get_running_loop().time() - started
            assert len(held) == connects
            assert 0.5 * connects <= took < 0.5 * connects + 1
        finally:
            await engine.dispose()


async def test_after_a_connect_timed_out_the_next_ones_are_503_at_once_for_a_second() -> None:
    """Requests queued behind one whose connect hung are not each held for a connect
    timeout of their own: for `rest_after_timeout` the engine tries no new connection
    and answers at once; then it tries again."""
    async with silent_server() as (url, held):
        engine = create_engine(url, pool_size=2, connect_timeout=0.5, rest_after_timeout=1.0)
        loop = asyncio.get_running_loop()
        try:
            first = loop.time()
            with pytest.raises(StoreUnavailable, match="database unreachable: TimeoutError"):
                async with Session(engine):
                    pass
            assert len(held) == 1
            started = loop.time()
            with pytest.raises(StoreUnavailable, match="a connect timed out just now"):
                async with Session(engine):
                    pass
            assert loop.time() - started < 0.1
            assert len(held) == 1  # no connect was made
            await asyncio.sleep(max(0.0, first + 0.5 + 1.0 - loop.time()) + 0.05)
            with pytest.raises(StoreUnavailable, match=r"database unreachable: TimeoutError$"):
                async with Session(engine):
                    pass
            assert len(held) == 2  # rested, then tried again
            assert engine.checked_out() == 0
        finally:
            await engine.dispose()
