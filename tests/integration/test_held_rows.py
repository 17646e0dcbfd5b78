"""A row another session holds for long delays only the requests that need it.

A worker runs one batch at a time. If that batch waited for a row held elsewhere,
every request queued behind it, for any user, would wait too: for as long as the
lock timeout (10 s), and again at each retry. Batches wait in turn for a row only as
long as another batch holds one (IN_TURN); past that they skip a held row, and the
requests that need it wait in a batch of their own."""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import asyncpg
import pytest

from adapters.postgres.engine import create_engine
from adapters.postgres.movements import IN_TURN, PostgresMovementBatch
from application.deposit import Deposit, deposit
from application.errors import RowsBusy, RowsContended
from application.reserve import Reserve, reserve
from application.runner import MoneyMovements
from application.transfer import Transfer, transfer
from application.withdraw import Withdraw, withdraw
from tests import postgres
from tests.helpers import keep, rub, timed, unpickled
from tests.ledger_view import PostgresLedgerView, check_invariants

pytestmark = pytest.mark.postgres

HELD_FOR = 12.0  # longer than the lock timeout


async def test_a_row_held_for_12_s_delays_only_the_requests_that_need_it(pg_url: str) -> None:
    await postgres.truncate(pg_url)
    engine = create_engine(pg_url, pool_size=4)  # as a worker has, lock_timeout 10 s
    movements = MoneyMovements(lambda: PostgresMovementBatch(engine), max_in_flight=1)
    holder = await asyncpg.connect(pg_url)
    try:
        for user in range(1, 6):
            await movements.execute(deposit, Deposit(user, rub("100")), keep)
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT 1 FROM accounts WHERE user_id = 1 FOR UPDATE")
        started = time.monotonic()
        first = asyncio.create_task(timed(movements.execute(withdraw, Withdraw(1, rub("1")), keep)))
        await asyncio.sleep(0.2)
        # Requests that need user 1 (with others) wait with it; the rest do not.
        asked = time.monotonic() - started
        needs_it = asyncio.create_task(
            timed(movements.execute(transfer, Transfer(2, 1, rub("1")), keep))
        )
        others: list[tuple[float, Any]] = []
        while time.monotonic() - started < HELD_FOR:
            calls = [
                movements.execute(deposit, Deposit(2, rub("1")), keep),
                movements.execute(withdraw, Withdraw(3, rub("0.01")), keep),
                movements.execute(transfer, Transfer(4, 5, rub("0.01")), keep),
                movements.execute(reserve, Reserve(5, 1, len(others) + 1, rub("0.01")), keep),
            ]
            others += await asyncio.gather(*(timed(call) for call in calls))
            await asyncio.sleep(0.2)
        await held.rollback()
        released = time.monotonic() - started
        seconds, outcome = await first
        waited, moved = await needs_it
    finally:
        await holder.close()
    assert len(others) >= 100
    assert all(not isinstance(o, BaseException) for _, o in others), others
    assert max(s for s, _ in others) < 1.0, sorted(s for s, _ in others)[-5:]
    # The request for the held row: 503 at the lock timeout, not after retries.
    assert isinstance(outcome, RowsBusy), outcome
    assert 9.5 < seconds < 11.5, seconds
    # Queued behind it, the next one waited and went through once the row was free.
    assert not isinstance(moved, BaseException), moved
    assert waited > 9, waited
    assert released <= asked + waited < released + 1, (released, asked + waited)
    assert unpickled(moved).to_balance.available == rub("101")
    after = await movements.execute(withdraw, Withdraw(1, rub("1")), keep)
    assert unpickled(after).balance.available == rub("100")
    await engine.dispose()
    check_invariants(await PostgresLedgerView(pg_url).snapshot())


async def test_an_order_held_elsewhere_delays_only_the_requests_that_name_it(pg_url: str) -> None:
    await postgres.truncate(pg_url)
    engine = create_engine(pg_url, pool_size=4, lock_timeout="1s")
    movements = MoneyMovements(lambda: PostgresMovementBatch(engine), max_in_flight=1)
    holder = await asyncpg.connect(pg_url)
    try:
        await movements.execute(deposit, Deposit(1, rub("100")), keep)
        await movements.execute(reserve, Reserve(1, 2, 70, rub("10")), keep)
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT 1 FROM reservations WHERE order_id = 70 FOR UPDATE")
        recognize_it = asyncio.create_task(
            timed(movements.execute(reserve, Reserve(1, 2, 70, rub("10")), keep))
        )
        await asyncio.sleep(0.1)
        others = await asyncio.gather(
            *(timed(movements.execute(deposit, Deposit(1, rub("1")), keep)) for _ in range(10))
        )
        seconds, outcome = await recognize_it
        await held.rollback()
    finally:
        await holder.close()
        await engine.dispose()
    assert all(s < 0.5 and not isinstance(o, BaseException) for s, o in others), others
    assert isinstance(outcome, RowsBusy), outcome
    assert 0.9 < seconds < 2, seconds


class _Counted(PostgresMovementBatch):
    """Tells each lock it takes: whether in turn, and for which row it waited first."""

    locks: ClassVar[list[tuple[bool, Any]]] = []

    async def lock(self, *args: Any, **kwargs: Any) -> Any:
        self.locks.append((kwargs.get("in_turn", False), kwargs.get("wait_for")))
        return await super().lock(*args, **kwargs)


async def test_a_row_held_as_briefly_as_a_batch_holds_one_is_waited_for_in_turn(
    pg_url: str,
) -> None:
    """Another batch's row is waited for inside the same transaction: no second
    transaction, no lane (skipping it cost a whole second lock, write and commit)."""
    await postgres.truncate(pg_url)
    engine = create_engine(pg_url, pool_size=4)
    movements = MoneyMovements(lambda: _Counted(engine), max_in_flight=1)
    holder = await asyncpg.connect(pg_url)
    try:
        for user in (1, 2):
            await movements.execute(deposit, Deposit(user, rub("100")), keep)
        _Counted.locks.clear()
        held = holder.transaction()
        await held.start()
        await holder.execute("UPDATE accounts SET available = available + 10000 WHERE user_id = 1")
        calls = asyncio.gather(
            timed(movements.execute(transfer, Transfer(1, 2, rub("150")), keep)),
            timed(movements.execute(deposit, Deposit(2, rub("1")), keep)),
        )
        await asyncio.sleep(0.05)
        await held.commit()  # 50 ms: a batch's lock, write and commit on a busy worker
        (_, moved), (_, deposited) = await calls
    finally:
        await holder.close()
        await engine.dispose()
    # The transfer read the balance the holder committed (200.00): waited, not skipped.
    assert unpickled(moved).from_balance.available == rub("50")
    assert unpickled(deposited).balance.available == rub("251")
    assert _Counted.locks == [(True, None)]


async def test_waiting_in_turn_is_bounded_and_leaves_the_lock_timeout_as_it_was(
    pg_url: str,
) -> None:
    """Past IN_TURN the lock gives up (RowsContended: run again, skipping); either way
    the statements after it wait as long as the session allows (10 s), not IN_TURN."""
    await postgres.truncate(pg_url)
    engine = create_engine(pg_url, pool_size=2)
    movements = MoneyMovements(lambda: PostgresMovementBatch(engine))
    await movements.execute(deposit, Deposit(1, rub("100")), keep)
    holder = await asyncpg.connect(pg_url)
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT 1 FROM accounts WHERE user_id = 1 FOR UPDATE")
        async with PostgresMovementBatch(engine) as batch:
            started = time.monotonic()
            with pytest.raises(RowsContended):
                await batch.lock([1], [], [], [None], in_turn=True)
            gave_up = time.monotonic() - started
        await held.rollback()
        async with PostgresMovementBatch(engine) as batch:
            locked = await batch.lock([1], [], [], [None], in_turn=True)
            after = await batch.db.connection.fetchval("SHOW lock_timeout")
    finally:
        await holder.close()
        await engine.dispose()
    assert float(IN_TURN.removesuffix("ms")) / 1000 <= gave_up < 1.0, gave_up
    assert list(locked.accounts) == [1]
    assert after == "10s"
