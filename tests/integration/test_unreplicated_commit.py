"""A COMMIT that waits for the synchronous standby, cancelled (`pg_cancel_backend`, a
client's cancel request), has committed on the primary alone: PostgreSQL answers it
as done, with a WARNING. A movement acknowledged then would be lost in a failover to
the standby. The service must not acknowledge it until the standby has it: a keyed
request runs again, and its replay's commit waits for the standby (the lock of its
rows writes WAL); a request without a key is answered 503 with the outcome unknown.
Its events, visible on the primary, are published only once the standby has them too.

The standby that never answers is a primary told to wait for one that does not
exist (`synchronous_standby_names`, a setting of the whole server): a server of the
test's own."""

from __future__ import annotations

import asyncio
import pickle
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Self

import asyncpg
import pytest

from adapters.embedded.server import EmbeddedPostgres
from adapters.postgres.engine import create_engine, database_status, migrate
from adapters.postgres.events import PostgresOutbox
from adapters.postgres.movements import PostgresMovementBatch
from adapters.postgres.revisions import head_revision
from adapters.postgres.session import UNREPLICATED, Engine
from adapters.postgres.uow import PostgresUnitOfWork
from application.deposit import Deposit, deposit
from application.errors import StoreUnavailable
from application.events import StoredEvent, events_after
from application.ports import StoredResponse
from application.relay import Relay, RelaySettings
from application.runner import MoneyMovements
from application.withdraw import Withdraw, withdraw
from application.work import Job, Outcome, client_batch
from tests.helpers import keep, rub
from tests.ledger_view import PostgresLedgerView, check_invariants

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
async def primary() -> AsyncIterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="balance-test-pg-"))
    server = EmbeddedPostgres(folder / "pgdata")
    url = server.start()
    try:
        await migrate(url)
        yield url
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


class Standby:
    """What the primary waits for at commit: the standby named, or none."""

    def __init__(self, url: str, admin: asyncpg.Connection) -> None:
        self._url, self._admin = url, admin

    async def required(self, name: str) -> None:
        """Once every session has it: pg_reload_conf() only asks the postmaster, which
        reloads, then signals the sessions. A session opened after that has it."""
        await self._admin.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{name}'")
        await self._admin.execute("SELECT pg_reload_conf()")
        for _ in range(250):
            fresh = await asyncpg.connect(self._url)
            try:
                if await fresh.fetchval("SHOW synchronous_standby_names") == name:
                    return
            finally:
                await fresh.close()
            await asyncio.sleep(0.02)
        raise AssertionError(f"the server never took synchronous_standby_names = {name!r}")

    async def waiting(
        self, but: str | None = None, unanswered: asyncio.Task[object] | None = None
    ) -> tuple[int, str]:
        """The server pid and transaction id of a COMMIT that waits for the standby (a
        transaction other than `but`), while the request `unanswered` is."""
        for _ in range(500):
            if unanswered is not None and unanswered.done():
                raise AssertionError(f"answered before the standby has it: {unanswered}")
            row = await self._admin.fetchrow(
                "SELECT pid, backend_xid::text AS xid FROM pg_stat_activity"
                " WHERE wait_event = 'SyncRep' AND backend_xid::text IS DISTINCT FROM $1"
                " LIMIT 1",
                but,
            )
            if row is not None:
                return int(row["pid"]), str(row["xid"])
            await asyncio.sleep(0.02)
        raise AssertionError("no COMMIT waits for the standby")

    async def cancel(self, pid: int) -> None:
        assert await self._admin.fetchval("SELECT pg_cancel_backend($1)", pid)


@pytest.fixture
async def standby(primary: str) -> AsyncIterator[Standby]:
    admin = await asyncpg.connect(primary)
    standby = Standby(primary, admin)
    try:
        yield standby
    finally:
        await standby.required("")
        await admin.close()


@pytest.fixture
async def engine(primary: str) -> AsyncIterator[Engine]:
    engine = create_engine(primary, pool_size=2)
    yield engine
    await engine.dispose()


def movements(engine: Engine) -> MoneyMovements:
    # Given time to run again after the cancel, however slow the machine.
    return MoneyMovements(lambda: PostgresMovementBatch(engine), retry_within=30)


async def deposited_on_the_primary_alone(
    engine: Engine, standby: Standby, user_id: int, amount: str
) -> StoreUnavailable:
    """A deposit without a key whose COMMIT's wait for the standby was cancelled, and
    the 503 it was answered with."""
    request = asyncio.create_task(
        movements(engine).execute(deposit, Deposit(user_id, rub(amount)), keep)
    )
    pid, _ = await standby.waiting()
    await standby.cancel(pid)
    with pytest.raises(StoreUnavailable) as refused:
        await asyncio.wait_for(request, 10)
    return refused.value


async def balance(url: str, user_id: int) -> int:
    """Kopecks available, on the primary."""
    ledger = await PostgresLedgerView(url).snapshot()
    check_invariants(ledger)
    return ledger.accounts[user_id][0]


async def test_a_keyed_movement_is_acknowledged_only_once_the_standby_has_it(
    primary: str, standby: Standby, engine: Engine
) -> None:
    await standby.required("standby_that_never_answers")
    request = asyncio.create_task(
        movements(engine).execute(deposit, Deposit(1, rub("5")), keep, "unreplicated-1")
    )
    pid, first = await standby.waiting()
    await standby.cancel(pid)
    # Committed on the primary, but not acknowledged: it ran again, and the replay's
    # commit waits for the standby in turn.
    await standby.waiting(but=first, unanswered=request)
    await asyncio.sleep(0.5)
    assert not request.done(), request
    assert await balance(primary, 1) == 500  # on the primary alone

    await standby.required("")  # the standby caught up (or was given up on)
    answer = await asyncio.wait_for(request, 10)
    assert answer.status == 200
    assert pickle.loads(answer.body).balance.available == rub("5")
    assert await balance(primary, 1) == 500  # once


def refusals(outcomes: Sequence[Outcome]) -> StoredResponse:
    return StoredResponse(200, pickle.dumps([type(o.refusal).__name__ for o in outcomes]))


async def test_a_keyed_answer_that_moved_no_money_waits_for_the_standby_too(
    primary: str, standby: Standby, engine: Engine
) -> None:
    """A client's batch under a key whose operations were all refused for a user who
    has no account: its answer is stored, but its replay locks no user's row. Its
    commit must wait for the standby all the same: a failover that lost the key would
    let a retry run the batch again, and answer it differently once the user exists."""
    await standby.required("standby_that_never_answers")
    jobs = [Job.of(withdraw, Withdraw(9, rub("1")), keep)]
    batch = client_batch(jobs, refusals, atomic=False, key="unreplicated-b")
    request = asyncio.create_task(movements(engine).submit(batch))
    pid, first = await standby.waiting()
    await standby.cancel(pid)
    await standby.waiting(but=first, unanswered=request)  # the replay's commit

    await standby.required("")
    answer = await asyncio.wait_for(request, 10)
    assert pickle.loads(answer.response.body) == ["UserNotFound"]


async def test_a_movement_without_a_key_is_answered_503_with_the_outcome_unknown(
    primary: str, standby: Standby, engine: Engine
) -> None:
    await standby.required("standby_that_never_answers")
    refused = await deposited_on_the_primary_alone(engine, standby, 2, "7")
    assert str(refused) == UNREPLICATED
    assert not refused.outcome_known
    assert await balance(primary, 2) == 700  # it did commit, on the primary alone


class Recorded:
    """A broker that confirms at once what it is given."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []

    async def connect(self) -> None:
        pass

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        self.events += events

    async def close(self) -> None:
        pass


class GatedOutbox(PostgresOutbox):
    """Its reads of events wait for `gate`: the relay holds its lease and is about to
    read when the test lets it."""

    gate = asyncio.Event()

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        read = self.events.after

        async def after(event_id: int, limit: int, user_id: int | None = None) -> list[StoredEvent]:
            await GatedOutbox.gate.wait()
            return await read(event_id, limit, user_id)

        self.events.after = after  # type: ignore[method-assign]
        return self


async def test_the_relay_publishes_a_movement_only_once_the_standby_has_it(
    primary: str, standby: Standby, engine: Engine
) -> None:
    recorded = Recorded()
    relay = Relay(
        lambda: GatedOutbox(engine),
        recorded,
        settings=RelaySettings(lease_ms=60_000, idle_seconds=0.02),
        holder="relay",
    )
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(0.5)  # the lease taken, its read waiting for the gate
        await standby.required("standby_that_never_answers")
        await deposited_on_the_primary_alone(engine, standby, 3, "9")
        GatedOutbox.gate.set()  # it reads the deposit's event, on the primary alone
        await standby.waiting()  # the read of it waits for the standby
        await asyncio.sleep(0.5)
        assert [e for e in recorded.events if e.event.user_id == 3] == []

        await standby.required("")
        for _ in range(500):
            if any(e.event.user_id == 3 for e in recorded.events):
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
    assert [e.event.user_id for e in recorded.events if e.event.user_id == 3] == [3]


async def test_the_pull_api_shows_a_movement_only_once_the_standby_has_it(
    primary: str, standby: Standby, engine: Engine
) -> None:
    await standby.required("standby_that_never_answers")
    await deposited_on_the_primary_alone(engine, standby, 4, "3")
    pulled = asyncio.create_task(events_after(lambda: PostgresUnitOfWork(engine), 0, 100, 4))
    await standby.waiting(unanswered=pulled)
    await asyncio.sleep(0.5)
    assert not pulled.done()

    await standby.required("")
    page = await asyncio.wait_for(pulled, 10)
    assert [(e.event.type, e.event.user_id) for e in page] == [("deposit", 4)]


async def test_readiness_says_whether_a_commit_waits_for_a_standby(
    standby: Standby, engine: Engine
) -> None:
    status = await database_status(engine, head_revision())
    assert (status.problem, status.synchronous) == (None, False)
    await standby.required("standby_that_never_answers")
    status = await database_status(engine, head_revision())
    assert (status.problem, status.synchronous) == (None, True)
