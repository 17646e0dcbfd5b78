"""A database whose network goes silent after the connection was made (a partition, a
host frozen mid-query) refuses nothing and answers nothing: no error ever comes on
its own. Every statement the service sends has a time limit of its own
(`command_timeout`), so a request is answered 503 in seconds, not held until TCP
gives up (minutes) or the pool's wait runs out for everyone behind it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest

from adapters.postgres.engine import (
    COMMAND_TIMEOUT,
    KEEPALIVE_IDLE,
    TCP_USER_TIMEOUT,
    create_engine,
)
from adapters.postgres.movements import PostgresMovementBatch
from adapters.postgres.session import Session
from adapters.postgres.uow import PostgresUnitOfWork
from application.deposit import Deposit, deposit
from application.errors import StoreUnavailable
from application.get_balance import get_balance
from application.runner import MoneyMovements
from tests import postgres
from tests.helpers import keep, rub
from tests.ledger_view import PostgresLedgerView, check_invariants

pytestmark = pytest.mark.postgres


class Freezer:
    """A TCP proxy to the test's PostgreSQL that can stop passing bytes either way
    without closing anything, as a network that went silent."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def _upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        parts = urlsplit(self._url)
        socket_dir = parse_qs(parts.query).get("host", [""])[0]
        port = parts.port or 5432
        if socket_dir.startswith("/"):  # the embedded server answers on a unix socket
            return await asyncio.open_unix_connection(f"{socket_dir}/.s.PGSQL.{port}")
        return await asyncio.open_connection(parts.hostname or "127.0.0.1", port)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                await self.flowing.wait()  # frozen: held, never dropped, never closed
                if sink.is_closing():
                    return
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await self._upstream()
        self._writers += [writer, up_writer]
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def start(self) -> str:
        """The URL that goes through the proxy."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        parts = urlsplit(self._url)
        user = f"{parts.username}@" if parts.username else ""
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}", query=""))

    async def stop(self) -> None:
        self.flowing.set()
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def freezer(pg_url: str) -> AsyncIterator[Freezer]:
    proxy = Freezer(pg_url)
    yield proxy
    await proxy.stop()


async def test_a_database_gone_silent_mid_request_is_a_503_in_seconds(
    pg_url: str, freezer: Freezer
) -> None:
    await postgres.truncate(pg_url)
    engine = create_engine(
        await freezer.start(),
        pool_size=2,
        connect_timeout=1.0,
        command_timeout=1.0,
        rest_after_timeout=0.5,
    )
    runner = MoneyMovements(lambda: PostgresMovementBatch(engine), backoff=0)
    try:
        await runner.execute(deposit, Deposit(1, rub("5")), keep, "before")
        freezer.flowing.clear()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(
                runner.execute(deposit, Deposit(1, rub("7")), keep, "during"), 30
            )
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(get_balance(1, lambda: PostgresUnitOfWork(engine)), 30)
        # A movement's statement timed out once (1 s), the connect of its second try
        # (1 s), the read's statement (1 s): seconds, where it waited for ever.
        assert loop.time() - started < 6
        assert engine.checked_out() == 0
        freezer.flowing.set()
        # The network is back: once the engine's rest after the timed-out connect is
        # over, the same key applies the deposit once.
        await asyncio.sleep(0.6)
        await runner.execute(deposit, Deposit(1, rub("7")), keep, "during")
        ledger = await PostgresLedgerView(pg_url).snapshot()
        assert ledger.accounts == {1: (1200, 0)}
        check_invariants(ledger)
    finally:
        freezer.flowing.set()
        await engine.dispose()


async def test_the_service_s_connections_have_a_time_limit_above_the_lock_timeout(
    pg_url: str,
) -> None:
    """The limit is there by default, and no statement that waits on purpose for a
    row (lock_timeout) reaches it first."""
    engine = create_engine(pg_url, pool_size=1)
    try:
        async with Session(engine) as session:
            limit = session.db.connection._config.command_timeout  # asyncpg's own
            lock = await session.db.connection.fetchval("SHOW lock_timeout")
        assert limit == COMMAND_TIMEOUT
        assert lock == "10s"
        assert COMMAND_TIMEOUT > 10
    finally:
        await engine.dispose()


async def test_after_a_statement_got_no_answer_the_idle_connections_are_not_used(
    pg_url: str, freezer: Freezer
) -> None:
    """A failover whose old primary froze: the pool's idle connections all lead to it.
    Once one statement ran out of time there, the idle ones are ended, so the batch's
    next try, and the requests after it, open connections, which find the next host
    (the frozen one is passed over after its connect timeout), instead of waiting out
    a statement's limit on each idle connection in turn."""
    await postgres.truncate(pg_url)
    url = postgres.behind(await freezer.start(), pg_url)
    engine = create_engine(url, pool_size=3, connect_timeout=0.5, command_timeout=1.0)
    runner = MoneyMovements(lambda: PostgresMovementBatch(engine), backoff=0)
    try:
        async with Session(engine), Session(engine), Session(engine):
            pass  # three connections through the proxy, idle now
        freezer.flowing.clear()
        loop = asyncio.get_running_loop()
        started = loop.time()
        # Its statement runs out of time (1 s); its batch's second try opens a
        # connection: the frozen host's connect times out (0.5 s), the next host's
        # takes it. (On the next idle connection it ran out of time again: a 503.)
        await runner.execute(deposit, Deposit(1, rub("5")), keep, "first")
        assert loop.time() - started < 2.5
        started = loop.time()
        await runner.execute(deposit, Deposit(1, rub("5")), keep, "second")
        assert loop.time() - started < 0.5  # the host that took the last connection
    finally:
        freezer.flowing.set()
        await engine.dispose()
    ledger = await PostgresLedgerView(pg_url).snapshot()
    assert ledger.accounts == {1: (1000, 0)}  # the first applied once
    check_invariants(ledger)


async def test_the_service_s_tcp_connections_give_up_on_a_silent_network(
    pg_url: str, freezer: Freezer
) -> None:
    """Keepalive probes on idle connections, and what is sent given up on after
    TCP_USER_TIMEOUT without an acknowledgement: a cut network ends the connection in
    seconds (make test-ha cuts a primary off for real). Read back from the socket of a
    pooled connection over TCP (the proxy's), as the kernel has them."""
    engine = create_engine(await freezer.start(), pool_size=1)
    try:
        async with Session(engine) as session:
            sock = session.db.connection._transport.get_extra_info("socket")  # asyncpg's own
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == KEEPALIVE_IDLE
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 5000
        assert TCP_USER_TIMEOUT < COMMAND_TIMEOUT
    finally:
        await engine.dispose()
