"""Group commit on PostgreSQL under real faults: a connection killed before COMMIT, a
COMMIT whose answer never arrives, and two workers racing for one order id."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import pytest

from adapters.postgres.engine import create_engine
from adapters.postgres.movements import PostgresMovementBatch
from adapters.postgres.session import Engine
from application.deposit import Deposit, deposit
from application.errors import StoreUnavailable
from application.ports import Changes
from application.recognize import Recognize, recognize
from application.reserve import Reserve, reserve
from application.runner import MoneyMovements
from application.withdraw import Withdraw, withdraw
from domain.errors import OrderAlreadyUsed, ReservationExpired
from tests import postgres
from tests.conftest import Adapter
from tests.helpers import keep, rub, run, unpickled
from tests.ledger_view import PostgresLedgerView, check_invariants

pytestmark = pytest.mark.postgres


async def terminate(url: str, pid: int) -> None:
    admin = await asyncpg.connect(url)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


def killed_before_write(url: str, times: int) -> Callable[[Engine], PostgresMovementBatch]:
    """Batches whose backend is terminated after the locks, before the write."""
    state = {"kills": 0}

    class KilledBeforeWrite(PostgresMovementBatch):
        async def write(self, changes: Changes) -> None:
            if state["kills"] < times:
                state["kills"] += 1
                await terminate(url, self.db.connection.get_server_pid())
            await super().write(changes)

    return KilledBeforeWrite


async def send(movements: MoneyMovements, calls: list[tuple[Any, Any, str | None]]) -> list[Any]:
    sent = (movements.execute(use_case, command, keep, key) for use_case, command, key in calls)
    return await asyncio.gather(*sent, return_exceptions=True)


async def test_a_batch_killed_before_commit_applies_nothing_and_is_retried(
    pg_url: str, pg_engine: Engine
) -> None:
    await postgres.truncate(pg_url)
    batch = killed_before_write(pg_url, times=1)
    movements = MoneyMovements(lambda: batch(pg_engine), max_in_flight=1, backoff=0)
    calls: list[tuple[Any, Any, str | None]] = [
        (deposit, Deposit(1, rub("10")), "k-a"),
        (deposit, Deposit(2, rub("20")), None),
        (withdraw, Withdraw(1, rub("4")), None),
    ]
    outcomes = await send(movements, calls)
    assert not any(isinstance(o, BaseException) for o in outcomes), outcomes
    ledger = await PostgresLedgerView(pg_url).snapshot()
    assert ledger.accounts == {1: (600, 0), 2: (2000, 0)}  # each once
    assert len({e.transaction_id for e in ledger.entries}) == 3
    check_invariants(ledger)


class CommitAnswerLost:
    """A TCP proxy to PostgreSQL that forwards a COMMIT, lets the server commit, and
    then cuts the connection before the client reads the answer: the real
    "unknown outcome" of a network that fails at the worst moment."""

    def __init__(self, upstream: Callable[[], Awaitable[Any]]) -> None:
        self._upstream = upstream
        self.armed = False
        self.cut = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> CommitAnswerLost:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await self._upstream()
        committing = asyncio.Event()

        async def client_to_server() -> None:
            while data := await reader.read(65536):
                if self.armed and b"COMMIT\x00" in data:
                    self.armed = False
                    committing.set()
                up_writer.write(data)
                await up_writer.drain()

        async def server_to_client() -> None:
            while data := await up_reader.read(65536):
                if committing.is_set():  # the server's answer to COMMIT: drop it
                    self.cut += 1
                    break
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.create_task(client_to_server()), asyncio.create_task(server_to_client())]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for w in (writer, up_writer):
            w.close()


def upstream_of(url: str) -> Callable[[], Awaitable[Any]]:
    parts = urlsplit(url)
    host = parse_qs(parts.query).get("host", [parts.hostname or "127.0.0.1"])[0]
    port = parts.port or 5432
    if host.startswith("/"):
        socket = str(Path(host) / f".s.PGSQL.{port}")
        return lambda: asyncio.open_unix_connection(socket)
    return lambda: asyncio.open_connection(host, port)


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{port}", query=""))


@pytest.fixture
async def lost_commit(pg_url: str) -> AsyncIterator[tuple[CommitAnswerLost, Engine]]:
    async with CommitAnswerLost(upstream_of(pg_url)) as proxy:
        engine = create_engine(through(pg_url, proxy.port), pool_size=2)
        try:
            yield proxy, engine
        finally:
            await engine.dispose()


async def test_a_commit_whose_answer_is_lost_replays_keyed_commands_and_503s_the_rest(
    pg_url: str, lost_commit: tuple[CommitAnswerLost, Engine]
) -> None:
    await postgres.truncate(pg_url)
    proxy, engine = lost_commit
    movements = MoneyMovements(lambda: PostgresMovementBatch(engine), max_in_flight=1, backoff=0)
    await movements.execute(deposit, Deposit(1, rub("100")), keep)  # opens the pool
    proxy.armed = True
    calls: list[tuple[Any, Any, str | None]] = [
        (deposit, Deposit(2, rub("10")), "k-lost-1"),
        (withdraw, Withdraw(1, rub("30")), None),
        (deposit, Deposit(3, rub("5")), "k-lost-2"),
    ]
    outcomes = await send(movements, calls)
    assert proxy.cut == 1
    unkeyed = outcomes[1]
    assert isinstance(unkeyed, StoreUnavailable)
    assert not unkeyed.outcome_known
    keyed = [unpickled(outcomes[0]), unpickled(outcomes[2])]
    assert [k.balance.available for k in keyed] == [rub("10"), rub("5")]
    # The batch did commit: the keyed commands were answered by replaying what it
    # stored, and the unkeyed withdrawal is in the ledger once, though answered 503.
    ledger = await PostgresLedgerView(pg_url).snapshot()
    assert ledger.accounts == {1: (7000, 0), 2: (1000, 0), 3: (500, 0)}
    assert ledger.idempotency_keys == 2
    check_invariants(ledger)
    replayed = await movements.execute(deposit, Deposit(2, rub("10")), keep, "k-lost-1")
    assert unpickled(replayed) == keyed[0]


async def test_two_workers_racing_for_order_ids_lose_alone(pg_url: str, pg_engine: Engine) -> None:
    await postgres.truncate(pg_url)
    workers = [
        MoneyMovements(lambda: PostgresMovementBatch(pg_engine), max_in_flight=1) for _ in range(2)
    ]
    for user in (1, 2, 3, 4):
        await workers[0].execute(deposit, Deposit(user, rub("100")), keep)
    rounds = 30
    calls = []
    for order in range(1, rounds + 1):
        for user, worker in zip((1, 2), workers, strict=True):
            mates: list[tuple[Any, Any, str | None]] = [
                (deposit, Deposit(user + 2, rub("1")), None),
                (reserve, Reserve(user, 9, order, rub("1")), None),
                (deposit, Deposit(user + 2, rub("1")), None),
            ]
            calls.append(send(worker, mates))
    batches = await asyncio.gather(*calls)
    for order in range(rounds):
        first, second = batches[2 * order], batches[2 * order + 1]
        reserved = [first[1], second[1]]
        losers = [o for o in reserved if isinstance(o, BaseException)]
        assert len(losers) == 1, reserved
        assert isinstance(losers[0], OrderAlreadyUsed)
        mates = [first[0], first[2], second[0], second[2]]
        assert not any(isinstance(m, BaseException) for m in mates), mates
    ledger = await PostgresLedgerView(pg_url).snapshot()
    assert len(ledger.reservations) == rounds
    assert ledger.accounts[3][0] + ledger.accounts[4][0] == 2 * 10_000 + 4 * rounds * 100
    check_invariants(ledger)


async def test_a_recognize_racing_the_sweeper_at_expires_at_ends_one_way(
    pg_url: str, pg_adapter: Adapter
) -> None:
    """Many times: a recognition sent as the hold runs out, while two sweepers pass:
    the reservation ends recognized or expired, never both, and the money adds up."""
    await run(pg_adapter, deposit, Deposit(1, rub("1000")))
    rounds, recognized, expired = 25, 0, 0
    for order in range(1, rounds + 1):
        db = await asyncpg.connect(pg_url)
        try:
            now = await db.fetchval("SELECT clock_timestamp()")
        finally:
            await db.close()
        at = now + timedelta(milliseconds=120)
        await run(pg_adapter, reserve, Reserve(1, 3, order, rub("10"), expires_at=at))
        offset = (order % 5 - 2) * 0.005  # from 10 ms before the instant to 10 ms after
        await asyncio.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds() + offset))
        outcomes = await asyncio.gather(
            run(pg_adapter, recognize, Recognize(order, 1, 3, rub("10"))),
            *(pg_adapter.sweeper(worker).sweep() for worker in (0, 1, 0, 1)),
            return_exceptions=True,
        )
        answer = outcomes[0]
        if isinstance(answer, ReservationExpired):
            expired += 1
        else:
            assert not isinstance(answer, BaseException), answer
            recognized += 1
        await pg_adapter.sweeper().sweep()  # whatever is still due
    ledger = await PostgresLedgerView(pg_url).snapshot()
    statuses = {r.order_id: r.status for r in ledger.reservations}
    assert set(statuses.values()) <= {"recognized", "expired"}
    assert list(statuses.values()).count("recognized") == recognized
    assert list(statuses.values()).count("expired") == expired
    closings = [e for e in ledger.entries if e.account == "reserved" and e.amount < 0]
    assert len(closings) == rounds  # each reservation ended once
    assert ledger.accounts == {1: (100_000 - recognized * 1000, 0)}
    check_invariants(ledger)


async def test_two_servers_sweeping_expire_each_reservation_once(
    pg_url: str, pg_adapter: Adapter
) -> None:
    for user in range(1, 6):
        await run(pg_adapter, deposit, Deposit(user, rub("100")))
    later = datetime.now(UTC) + timedelta(hours=1)
    orders = list(range(1, 41))
    for order in orders:
        await run(pg_adapter, reserve, Reserve(order % 5 + 1, 2, order, rub("1"), expires_at=later))
        await pg_adapter.make_due(order)
    swept = await asyncio.gather(*(pg_adapter.sweeper(w % 2).sweep() for w in range(6)))
    assert sum(swept) >= len(orders)  # every sweeper saw them due; they expired once
    ledger = await PostgresLedgerView(pg_url).snapshot()
    assert {r.status for r in ledger.reservations} == {"expired"}
    expire_transactions = {e.transaction_id for e in ledger.entries if e.kind == "expire"}
    assert len(expire_transactions) == len(orders)
    assert ledger.accounts == dict.fromkeys(range(1, 6), (10000, 0))
    check_invariants(ledger)
