"""What failover needs of the pool: a connection that answered "read-only" (a
standby, or a primary demoted under it) is thrown away, never reused; a URL may
list several hosts and the service finds the one that takes writes."""

from __future__ import annotations

import asyncio

import pytest

from adapters.postgres.engine import create_engine, database_status
from adapters.postgres.movements import PostgresMovementBatch
from adapters.postgres.revisions import head_revision
from adapters.postgres.session import Engine, Session
from application.deposit import Deposit, deposit
from application.runner import MoneyMovements
from tests import postgres
from tests.helpers import keep, rub
from tests.ledger_view import PostgresLedgerView
from tests.postgres import behind, silent_server

pytestmark = pytest.mark.postgres


async def backend_pid(engine: Engine) -> int:
    async with Session(engine) as session:
        return int(session.db.connection.get_server_pid())


async def test_a_connection_that_answered_read_only_is_dropped(pg_url: str) -> None:
    await postgres.truncate(pg_url)
    engine = create_engine(pg_url, pool_size=1)
    try:
        first = await backend_pid(engine)
        # The pooled connection now behaves as one to a standby would: writes refused.
        async with Session(engine) as session:
            await session.db.connection.execute("SET default_transaction_read_only = on")
        assert await backend_pid(engine) == first  # still pooled, still read-only
        movements = MoneyMovements(lambda: PostgresMovementBatch(engine), backoff=0)
        await movements.execute(deposit, Deposit(1, rub("5")), keep, "after-25006")
        assert await backend_pid(engine) != first  # dropped, and a new one took its place
    finally:
        await engine.dispose()
    ledger = await PostgresLedgerView(pg_url).snapshot()
    assert ledger.accounts == {1: (500, 0)}  # retried on the new connection, applied once


async def test_a_url_with_several_hosts_finds_the_primary(pg_url: str) -> None:
    # First a host that takes nothing: port 9 refuses every connection.
    engine = create_engine(behind("postgresql://127.0.0.1:9", pg_url), pool_size=1)
    try:
        status = await database_status(engine, head_revision())
    finally:
        await engine.dispose()
    assert status.problem is None, status
    assert status.role == "primary"
    assert status.server


@pytest.mark.parametrize("primary", [True, False], ids=["read-write", "any"])
async def test_a_first_host_gone_without_a_word_leaves_time_for_the_next(
    pg_url: str, primary: bool
) -> None:
    """After a failover whose old primary's machine is gone (no refusal ever comes),
    the URL's first host takes every connect until it times out. Each host gets the
    whole connect timeout, as libpq gives it: the next host, the primary, is asked
    once the first's ran out. (asyncpg shares one timeout among all of them, so the
    primary was never reached: not one connection until the old machine came back.)
    The next connect goes to the host that answered at once: the one that took the
    last connection is asked first when the URL asks for the primary, and a host that
    timed out is asked last whatever the URL asks."""
    async with silent_server() as (silent_url, held):
        url = behind(silent_url, pg_url, primary=primary)
        engine = create_engine(url, pool_size=1, connect_timeout=0.5)
        loop = asyncio.get_running_loop()
        try:
            started = loop.time()
            status = await database_status(engine, head_revision())
            took = loop.time() - started
            assert len(held) == 1  # the silent host was asked first, once
            await engine.dispose()  # the next checkout opens a new connection
            started = loop.time()
            again = await database_status(engine, head_revision())
            took_again = loop.time() - started
        finally:
            await engine.dispose()
    assert status.problem is None, status
    assert status.role == "primary"
    assert 0.5 <= took < 2.5
    assert (again.role, len(held)) == ("primary", 1)
    assert took_again < 0.4
