"""Passing database failures: retried when safe, otherwise a clean 503, never half a write."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from adapters.postgres.engine import create_engine
from adapters.postgres.movements import PostgresMovementBatch
from adapters.postgres.session import Engine
from application.deposit import Deposit, deposit
from application.errors import RefusedBefore, RequestInProgress, StoreUnavailable
from application.ports import MovementBatch
from application.reserve import Reserve, reserve
from application.runner import MoneyMovements
from application.withdraw import Withdraw, withdraw
from domain.errors import InsufficientFunds
from tests import postgres
from tests.helpers import keep, rub
from tests.ledger_view import PostgresLedgerView, check_invariants

pytestmark = pytest.mark.postgres


async def terminate_own_backend(batch: PostgresMovementBatch, admin_url: str) -> None:
    """A real lost connection: the batch's backend terminated by another session."""
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", batch.db.connection.get_server_pid())
    finally:
        await admin.close()


class KilledOnce(PostgresMovementBatch):
    """Kills its own backend after the use case ran and before commit, the first `times` times."""

    kills = 0

    def __init__(self, engine: Engine, times: int) -> None:
        super().__init__(engine)
        self._times = times

    async def commit(self) -> None:
        if KilledOnce.kills < self._times:
            KilledOnce.kills += 1
            await terminate_own_backend(self, self.admin_url)
        await super().commit()

    admin_url = ""


def movements(engine: Engine, url: str, times: int) -> MoneyMovements:
    KilledOnce.kills = 0
    KilledOnce.admin_url = url

    def uow() -> MovementBatch:
        return KilledOnce(engine, times)

    return MoneyMovements(uow, attempts=3, backoff=0)


async def test_a_connection_lost_at_commit_is_retried_safely_under_a_key(
    pg_url: str, pg_engine: Engine
) -> None:
    await postgres.truncate(pg_url)
    runner = movements(pg_engine, pg_url, times=1)
    await runner.execute(deposit, Deposit(1, rub("5")), keep, "k-commit")
    ledger = await PostgresLedgerView(pg_url).snapshot()
    assert ledger.accounts == {1: (500, 0)}
    check_invariants(ledger)


async def test_without_a_key_an_unknown_commit_outcome_is_a_503_not_a_retry(
    pg_url: str, pg_engine: Engine
) -> None:
    await postgres.truncate(pg_url)
    await MoneyMovements(lambda: PostgresMovementBatch(pg_engine)).execute(
        deposit, Deposit(1, rub("10")), keep
    )
    runner = movements(pg_engine, pg_url, times=1)
    with pytest.raises(StoreUnavailable) as failure:
        await runner.execute(withdraw, Withdraw(1, rub("4")), keep)
    assert not failure.value.outcome_known
    ledger = await PostgresLedgerView(pg_url).snapshot()
    assert ledger.accounts == {1: (1000, 0)}  # the commit never reached the server
    check_invariants(ledger)


async def test_a_database_that_keeps_failing_gives_up_with_503(
    pg_url: str, pg_engine: Engine
) -> None:
    await postgres.truncate(pg_url)
    runner = movements(pg_engine, pg_url, times=10)
    with pytest.raises(StoreUnavailable):
        await runner.execute(deposit, Deposit(1, rub("5")), keep, "k-down")
    assert (await PostgresLedgerView(pg_url).snapshot()).accounts == {}


async def test_a_key_still_in_flight_is_409_after_the_lock_timeout(pg_url: str) -> None:
    await postgres.truncate(pg_url)
    holder = await asyncpg.connect(pg_url)
    engine = create_engine(pg_url, pool_size=2, lock_timeout="300ms")
    try:
        first = holder.transaction()
        await first.start()
        await holder.execute("INSERT INTO idempotency_keys (key, fingerprint) VALUES ('busy', 'x')")
        runner = MoneyMovements(lambda: PostgresMovementBatch(engine), attempts=1)
        with pytest.raises(RequestInProgress):
            await runner.execute(deposit, Deposit(1, rub("5")), keep, "busy")
        await first.rollback()
        assert (await PostgresLedgerView(pg_url).snapshot()).accounts == {}
    finally:
        await holder.close()
        await engine.dispose()


class RefusedOnce(PostgresMovementBatch):
    """PostgreSQL itself raises `sqlstate` inside the transaction, after the use case
    wrote and before commit, the first time only: as a deadlock victim would."""

    sqlstate = ""
    attempts = 0

    async def commit(self) -> None:
        RefusedOnce.attempts += 1
        if RefusedOnce.attempts == 1:
            await self.db.connection.execute(
                f"DO $$ BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = '{self.sqlstate}'; END $$"
            )
        await super().commit()


@pytest.mark.parametrize(
    ("sqlstate", "error"),
    [
        ("40P01", asyncpg.DeadlockDetectedError),
        ("40001", asyncpg.SerializationError),
    ],
    ids=["deadlock", "serialization failure"],
)
@pytest.mark.parametrize("key", [None, "k-refused"], ids=["no key", "a key"])
async def test_a_deadlock_or_serialization_failure_is_rolled_back_and_retried(
    pg_url: str, pg_engine: Engine, sqlstate: str, error: type[Exception], key: str | None
) -> None:
    await postgres.truncate(pg_url)
    await MoneyMovements(lambda: PostgresMovementBatch(pg_engine)).execute(
        deposit, Deposit(1, rub("10")), keep
    )
    RefusedOnce.sqlstate, RefusedOnce.attempts = sqlstate, 0
    seen: list[BaseException] = []

    class Watched(RefusedOnce):
        async def __aexit__(self, *exc_info: Any) -> None:
            if exc_info[1] is not None:
                seen.append(exc_info[1])
            await super().__aexit__(*exc_info)

    runner = MoneyMovements(lambda: Watched(pg_engine), attempts=3, backoff=0)
    await runner.execute(withdraw, Withdraw(1, rub("4")), keep, key)
    assert RefusedOnce.attempts == 2
    assert [type(e) for e in seen] == [error]  # PostgreSQL's own error, then a clean retry
    ledger = await PostgresLedgerView(pg_url).snapshot()
    assert ledger.accounts == {1: (600, 0)}  # applied once: the first attempt rolled back
    check_invariants(ledger)


@pytest.mark.parametrize("condition", ["disk_full", "out_of_memory", "query_canceled", "io_error"])
async def test_the_server_s_own_trouble_is_a_503_for_each_request_not_a_500(
    pg_url: str, pg_engine: Engine, condition: str
) -> None:
    """A disk full, memory out, a statement cancelled (`statement_timeout`, an
    operator's `pg_cancel_backend`), an I/O error: the server's trouble, whoever met
    it. Each request is a 503 after its batch's attempts, not a batch split in halves
    down to every request (31 attempts for 16 requests), each then answered 500. Made
    here by a trigger that raises the condition for every entry written."""
    await postgres.truncate(pg_url)
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute("CREATE SEQUENCE IF NOT EXISTS attempts_made")
        await admin.execute(
            "CREATE OR REPLACE FUNCTION trouble() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN PERFORM nextval('attempts_made');"
            f" RAISE EXCEPTION 'simulated' USING ERRCODE = '{condition}'; END $$"
        )
        await admin.execute(
            "CREATE TRIGGER trouble BEFORE INSERT ON entries"
            " FOR EACH ROW EXECUTE FUNCTION trouble()"
        )
        runner = MoneyMovements(lambda: PostgresMovementBatch(pg_engine), attempts=3, backoff=0)
        with pytest.raises(StoreUnavailable) as alone:
            await runner.execute(deposit, Deposit(1, rub("5")), keep, "k-trouble")
        assert alone.value.outcome_known
        assert await admin.fetchval("SELECT last_value FROM attempts_made") == 3
        answers = await asyncio.gather(
            *(runner.execute(deposit, Deposit(u, rub("5")), keep) for u in range(2, 18)),
            return_exceptions=True,
        )
        assert {type(answer) for answer in answers} == {StoreUnavailable}
        assert (await PostgresLedgerView(pg_url).snapshot()).accounts == {}
        await admin.execute("DROP TRIGGER trouble ON entries")
        await runner.execute(deposit, Deposit(1, rub("5")), keep, "k-trouble")  # over: once
    finally:
        await admin.execute("DROP TRIGGER IF EXISTS trouble ON entries")
        await admin.execute("DROP FUNCTION IF EXISTS trouble()")
        await admin.execute("DROP SEQUENCE IF EXISTS attempts_made")
        await admin.close()
    ledger = await PostgresLedgerView(pg_url).snapshot()
    assert ledger.accounts == {1: (500, 0)}
    check_invariants(ledger)


class KilledThenHeld(PostgresMovementBatch):
    """Its first attempt's backend is terminated before COMMIT (a real lost connection);
    its later attempts wait for `go` before they lock anything."""

    killed = 0
    admin_url = ""
    held = asyncio.Event()
    go = asyncio.Event()

    async def lock(self, *args: Any, **kwargs: Any) -> Any:
        if KilledThenHeld.killed:
            KilledThenHeld.held.set()
            await KilledThenHeld.go.wait()
        return await super().lock(*args, **kwargs)

    async def commit(self) -> None:
        if not KilledThenHeld.killed:
            KilledThenHeld.killed += 1
            await terminate_own_backend(self, self.admin_url)
        await super().commit()


async def test_a_key_refused_on_another_worker_is_not_committed_by_its_first_run_retried(
    pg_url: str, pg_engine: Engine
) -> None:
    """Worker A's batch holding a keyed reserve loses its connection before COMMIT and
    is run again, later. Its client, cut off, sends the key to worker B meanwhile, when
    the money is gone: B answers 409. Money comes in, and A's run goes on: it finds B's
    refusal under the key and replays it. The reserve is never made (it was, while
    refusals were not stored: CI's disk-full run)."""
    await postgres.truncate(pg_url)
    plain = MoneyMovements(lambda: PostgresMovementBatch(pg_engine))
    await plain.execute(deposit, Deposit(1, rub("100")), keep)
    KilledThenHeld.killed, KilledThenHeld.admin_url = 0, pg_url
    KilledThenHeld.held, KilledThenHeld.go = asyncio.Event(), asyncio.Event()
    engine_a, engine_b = create_engine(pg_url, pool_size=2), create_engine(pg_url, pool_size=2)
    try:
        a = MoneyMovements(lambda: KilledThenHeld(engine_a), backoff=0)
        b = MoneyMovements(lambda: PostgresMovementBatch(engine_b))
        command = Reserve(1, 5, 7, rub("100"))
        first = asyncio.create_task(a.execute(reserve, command, keep, "K"))
        await asyncio.wait_for(KilledThenHeld.held.wait(), 10)  # killed, and held
        await plain.execute(withdraw, Withdraw(1, rub("100")), keep)
        with pytest.raises(InsufficientFunds):  # the answer the client acts on
            await b.execute(reserve, command, keep, "K")
        await plain.execute(deposit, Deposit(1, rub("100")), keep)
        KilledThenHeld.go.set()
        with pytest.raises(RefusedBefore):
            await asyncio.wait_for(first, 10)
    finally:
        KilledThenHeld.go.set()
        await engine_a.dispose()
        await engine_b.dispose()
    ledger = await PostgresLedgerView(pg_url).snapshot()
    assert ledger.reservations == []
    assert ledger.accounts == {1: (10_000, 0)}
    check_invariants(ledger)
