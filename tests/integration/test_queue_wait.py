"""A stalled database does not make a worker's queue an ever longer wait: a money
request that waited in the queue past its limit (BATCH_MAX_WAIT_MS) is answered 503
and not run, and the queue goes on with the requests that came after it.

The stall is real: an operator's session holds the accounts table (a migration's
`LOCK TABLE`), so the batch in flight waits for it, and every request behind it."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from adapters.postgres.engine import create_engine
from adapters.postgres.movements import PostgresMovementBatch
from application.deposit import Deposit, deposit
from application.errors import StoreUnavailable
from application.runner import MoneyMovements, Unobserved
from tests import postgres
from tests.helpers import keep, rub
from tests.ledger_view import PostgresLedgerView, check_invariants

pytestmark = pytest.mark.postgres

MAX_WAIT = 0.5


class Shed(Unobserved):
    def __init__(self) -> None:
        self.requests = 0

    def shed(self, requests: int) -> None:
        self.requests += requests


async def test_requests_that_waited_past_the_limit_are_503_unrun(pg_url: str) -> None:
    await postgres.truncate(pg_url)
    engine = create_engine(pg_url, pool_size=4)
    shed = Shed()
    movements = MoneyMovements(
        lambda: PostgresMovementBatch(engine), max_in_flight=1, max_wait=MAX_WAIT, observer=shed
    )

    def deposited(user: int) -> asyncio.Task[object]:
        return asyncio.create_task(movements.execute(deposit, Deposit(user, rub("1")), keep))

    operator = await asyncpg.connect(pg_url)
    try:
        await movements.execute(deposit, Deposit(1, rub("1")), keep)
        migration = operator.transaction()
        await migration.start()
        await operator.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
        first = deposited(2)  # in flight: waits for the table
        await asyncio.sleep(0.1)
        queued = [deposited(user) for user in (3, 4, 5)]
        await asyncio.sleep(MAX_WAIT + 0.2)
        assert not any(task.done() for task in (first, *queued))
        after = deposited(6)  # the queue stalls: those before it are answered now
        done, _ = await asyncio.wait(queued, timeout=1)
        assert done == set(queued)
        for task in queued:
            error = task.exception()
            assert isinstance(error, StoreUnavailable), error
            assert error.outcome_known
            assert f"waited over {MAX_WAIT:g} s" in str(error)
        assert shed.requests == 3
        assert (first.done(), after.done()) == (False, False)
        await migration.rollback()
        await asyncio.wait_for(asyncio.gather(first, after), 15)
    finally:
        await operator.close()
        await engine.dispose()
    ledger = await PostgresLedgerView(pg_url).snapshot()
    check_invariants(ledger)
    # The first and the one after the stall moved money; those that waited did not.
    assert {user: kopecks for user, (kopecks, _) in ledger.accounts.items()} == {
        1: 100,
        2: 100,
        6: 100,
    }
