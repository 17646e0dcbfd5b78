"""A batch that stalls between its write and its commit (its worker frozen, its
network cut) holds the event counter's row, which every batch that writes events
needs: the server ends such a session after idle_in_transaction_session_timeout, so
the others wait seconds, not a minute, and none of them fails."""

from __future__ import annotations

import asyncio

import pytest

from adapters.postgres.engine import SERVER_SETTINGS, create_engine
from adapters.postgres.movements import PostgresMovementBatch
from adapters.postgres.session import Engine
from application.deposit import Deposit, deposit
from application.errors import StoreUnavailable
from application.runner import MoneyMovements
from tests import postgres
from tests.helpers import keep, rub, timed
from tests.ledger_view import PostgresLedgerView, check_invariants

pytestmark = pytest.mark.postgres

STALL = 12.0  # longer than the lock timeout (10 s)


class StallsBeforeCommit(PostgresMovementBatch):
    """Its first batch sleeps after its write, holding every lock it took."""

    stalled = False

    async def commit(self) -> None:
        if not StallsBeforeCommit.stalled:
            StallsBeforeCommit.stalled = True
            await asyncio.sleep(STALL)
        await super().commit()


def idle_limit() -> float:
    value = SERVER_SETTINGS["idle_in_transaction_session_timeout"]
    assert value.endswith("s"), value
    return float(value[:-1])


async def test_a_batch_stalled_before_commit_holds_the_others_up_for_seconds(pg_url: str) -> None:
    await postgres.truncate(pg_url)
    frozen: Engine = create_engine(pg_url, pool_size=2)  # two workers, as `serve` runs
    alive: Engine = create_engine(pg_url, pool_size=2)
    stalled = MoneyMovements(lambda: StallsBeforeCommit(frozen), max_in_flight=1)
    others = MoneyMovements(lambda: PostgresMovementBatch(alive), max_in_flight=1)
    try:
        first = asyncio.create_task(
            timed(stalled.execute(deposit, Deposit(1, rub("5")), keep, "stalled-1"))
        )
        await asyncio.sleep(0.5)  # it wrote, took the counter's lock, and stalls
        results = await asyncio.gather(
            *(timed(others.execute(deposit, Deposit(u, rub("1")), keep)) for u in range(2, 12))
        )
        later = await timed(others.execute(deposit, Deposit(2, rub("1")), keep))
        _, outcome = await first
    finally:
        await frozen.dispose()
        await alive.dispose()
    waits = [s for s, _ in results]
    assert all(not isinstance(o, BaseException) for _, o in results), results
    assert idle_limit() <= 5
    assert max(waits) < idle_limit() + 3, waits  # not the stall's 12 s
    assert later[0] < 1.0, later
    assert not isinstance(later[1], BaseException), later
    # The stalled batch's session was ended before it committed: nothing of it was
    # written; keyed, it ran again on a fresh connection, or it was refused with a 503.
    assert isinstance(outcome, StoreUnavailable) or not isinstance(outcome, BaseException), outcome
    ledger = await PostgresLedgerView(pg_url).snapshot()
    check_invariants(ledger)
    deposited_to_1 = [e for e in ledger.entries if e.user_id == 1]
    assert len(deposited_to_1) == (0 if isinstance(outcome, BaseException) else 1)
