"""Concurrency claims, proven on PostgreSQL with many connections racing for the same rows."""

from __future__ import annotations

import asyncio
import contextlib
import pickle
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import asyncpg
import pytest

from adapters.postgres.engine import create_engine
from adapters.postgres.movements import PostgresMovementBatch
from application.cancel import Cancel, cancel
from application.deposit import Deposit, deposit
from application.limits import SetLimits, set_limits
from application.move import Move, move
from application.recognize import Recognize, recognize
from application.reserve import Reserve, reserve
from application.runner import MoneyMovements
from application.transfer import Transfer, transfer
from application.withdraw import Withdraw, withdraw
from application.work import Job, client_batch
from domain.errors import (
    DomainError,
    InsufficientFunds,
    LegRefused,
    OrderAlreadyUsed,
    ReservationAlreadyClosed,
)
from domain.money import Money
from domain.movement import Leg
from tests.conftest import Adapter
from tests.helpers import keep, outcomes_of, rub, run, unpickled
from tests.ledger_view import check_invariants

pytestmark = pytest.mark.postgres


async def settle(*calls: Any) -> list[Any]:
    return await asyncio.gather(*calls, return_exceptions=True)


def failures(outcomes: list[Any]) -> list[BaseException]:
    return [o for o in outcomes if isinstance(o, BaseException)]


async def test_a_thousand_deposits_to_one_user_add_up(pg_adapter: Adapter) -> None:
    outcomes = await settle(
        *(run(pg_adapter, deposit, Deposit(1, rub("1.00"))) for _ in range(1000))
    )
    assert failures(outcomes) == []
    ledger = await pg_adapter.view.snapshot()
    assert ledger.accounts == {1: (100_000, 0)}
    assert len({o.transaction_id for o in outcomes}) == 1000
    check_invariants(ledger)


async def test_concurrent_first_deposits_open_one_account(pg_adapter: Adapter) -> None:
    outcomes = await settle(
        *(run(pg_adapter, deposit, Deposit(42, rub("0.01"))) for _ in range(100))
    )
    assert failures(outcomes) == []
    ledger = await pg_adapter.view.snapshot()
    assert ledger.accounts == {42: (100, 0)}
    check_invariants(ledger)


async def test_reserves_never_overdraw(pg_adapter: Adapter) -> None:
    await run(pg_adapter, deposit, Deposit(1, rub("100")))
    outcomes = await settle(
        *(run(pg_adapter, reserve, Reserve(1, 1, order, rub("10"))) for order in range(1, 201))
    )
    succeeded = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = failures(outcomes)
    assert len(succeeded) == 10
    assert all(isinstance(f, InsufficientFunds) for f in refused), refused[:3]
    ledger = await pg_adapter.view.snapshot()
    assert ledger.accounts == {1: (0, 10_000)}
    check_invariants(ledger)


async def test_opposite_transfers_do_not_deadlock(pg_adapter: Adapter) -> None:
    await run(pg_adapter, deposit, Deposit(1, rub("1000")))
    await run(pg_adapter, deposit, Deposit(2, rub("1000")))
    calls = []
    for i in range(500):
        sender, receiver = (1, 2) if i % 2 == 0 else (2, 1)
        calls.append(run(pg_adapter, transfer, Transfer(sender, receiver, rub("1.00"))))
    outcomes = await settle(*calls)
    assert failures(outcomes) == []
    ledger = await pg_adapter.view.snapshot()
    assert ledger.accounts == {1: (100_000, 0), 2: (100_000, 0)}
    check_invariants(ledger)


async def test_one_idempotency_key_one_effect(pg_adapter: Adapter) -> None:
    command = Deposit(7, rub("25.00"))
    outcomes = await settle(
        *(pg_adapter.movements.execute(deposit, command, keep, "same-key") for _ in range(50))
    )
    assert failures(outcomes) == []
    assert len({o.body for o in outcomes}) == 1
    ledger = await pg_adapter.view.snapshot()
    assert ledger.accounts == {7: (2500, 0)}
    assert ledger.idempotency_keys == 1
    check_invariants(ledger)


async def test_a_keyed_retry_on_another_worker_is_answered_from_the_first_run(
    pg_url: str, pg_adapter: Adapter
) -> None:
    """Worker A moves all of user 1's money under a key and holds user 1's row until it
    commits; the client's retry reaches worker B, whose lock waits in turn for that
    row. B's statement finds the row as A left it (drained) but read the stored
    answers before A's commit: run again there, the transfer is refused. B must read
    the key afresh and answer what A did, never 409 for a transfer that was made."""
    await run(pg_adapter, deposit, Deposit(1, rub("10")))
    command = Transfer(1, 2, rub("10"))
    async with held_and_free(pg_url) as (a, b, committing, release):
        first = asyncio.create_task(a.execute(transfer, command, keep, "t-1"))
        await committing.wait()
        retry = asyncio.create_task(b.execute(transfer, command, keep, "t-1"))
        await waiting_for_a_row(pg_url)
        release.set()
        assert unpickled(await retry) == unpickled(await first)
    ledger = await pg_adapter.view.snapshot()
    assert ledger.accounts == {1: (0, 0), 2: (1000, 0)}
    check_invariants(ledger)


async def test_a_keyed_retry_is_not_refused_for_a_user_its_first_run_creates(
    pg_url: str, pg_adapter: Adapter
) -> None:
    """Worker A runs a client's batch, a first deposit to user 5 and a withdrawal under
    a key, and holds its commit. The withdrawal's retry reaches worker B, whose lock
    finds no user 5 (A's insert is not committed) and nothing to wait for: it would
    refuse 404, no account, while A's commit moves the money (the disk-full run met
    it). B must wait for A's key and answer what A did."""
    withdrawal = Withdraw(5, rub("3"))
    jobs = [
        Job.of(deposit, Deposit(5, rub("10")), keep),
        Job.of(withdraw, withdrawal, keep, "w-1"),
    ]
    async with held_and_free(pg_url) as (a, b, committing, release):
        first = asyncio.create_task(
            a.submit(client_batch(jobs, outcomes_of, atomic=True, key=None))
        )
        await committing.wait()
        retry = asyncio.create_task(b.execute(withdraw, withdrawal, keep, "w-1"))
        await waiting_for_a_row(pg_url)  # B's probe of the key waits for A
        release.set()
        (_, (stored, _)) = pickle.loads((await first).response.body)
        assert unpickled(await retry) == unpickled(stored)
    ledger = await pg_adapter.view.snapshot()
    assert ledger.accounts == {5: (700, 0)}
    check_invariants(ledger)


@contextlib.asynccontextmanager
async def held_and_free(
    url: str,
) -> AsyncIterator[tuple[MoneyMovements, MoneyMovements, asyncio.Event, asyncio.Event]]:
    """Two workers on their own engines: A, whose batches stop before their commit
    (`committing` set) until `release` is set, and B, whose batches do not."""
    committing, release = asyncio.Event(), asyncio.Event()

    class HeldCommit(PostgresMovementBatch):
        async def commit(self) -> None:
            committing.set()
            await release.wait()
            await super().commit()

    engine_a, engine_b = create_engine(url, pool_size=2), create_engine(url, pool_size=2)
    a = MoneyMovements(lambda: HeldCommit(engine_a))
    b = MoneyMovements(lambda: PostgresMovementBatch(engine_b))
    try:
        yield a, b, committing, release
    finally:
        release.set()
        await engine_a.dispose()
        await engine_b.dispose()


async def waiting_for_a_row(url: str) -> None:
    """Until a session of this database waits for a row lock."""
    watcher = await asyncpg.connect(url)
    try:
        for _ in range(2500):  # 5 s
            if await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ):
                return
            await asyncio.sleep(0.002)
    finally:
        await watcher.close()
    raise AssertionError("no session waited for a row lock within 5 s")


async def test_keyed_retries_on_many_workers_all_get_the_one_answer(
    pg_url: str, pg_adapter: Adapter
) -> None:
    """Each round, one keyed transfer of all of user 1's money, sent 12 times at once
    through four workers of their own connections: every copy answers the same 200,
    and the money moves once."""
    engines = [create_engine(pg_url, pool_size=3) for _ in range(4)]
    workers = [MoneyMovements(partial(PostgresMovementBatch, e)) for e in engines]
    try:
        for round_ in range(20):
            await run(pg_adapter, deposit, Deposit(1, rub("5")))
            command = Transfer(1, 2, rub("5"))
            key = f"drain-{round_}"
            outcomes = await settle(
                *(workers[i % 4].execute(transfer, command, keep, key) for i in range(12))
            )
            assert failures(outcomes) == [], (round_, failures(outcomes)[:3])
            assert len({o.body for o in outcomes}) == 1
    finally:
        for engine in engines:
            await engine.dispose()
    ledger = await pg_adapter.view.snapshot()
    assert ledger.accounts == {1: (0, 0), 2: (10_000, 0)}
    check_invariants(ledger)


async def test_recognize_and_cancel_race_one_wins(pg_adapter: Adapter) -> None:
    await run(pg_adapter, deposit, Deposit(1, rub("1000")))
    for order in range(1, 31):
        await run(pg_adapter, reserve, Reserve(1, 3, order, rub("10")))
    calls = []
    for order in range(1, 31):
        calls += [
            run(pg_adapter, recognize, Recognize(order, 1, 3, rub("10"))),
            run(pg_adapter, cancel, Cancel(order, 1, 3)),
        ]
    outcomes = await settle(*calls)
    for recognized, cancelled in zip(outcomes[::2], outcomes[1::2], strict=True):
        losers = [o for o in (recognized, cancelled) if isinstance(o, BaseException)]
        assert len(losers) == 1, (recognized, cancelled)
        assert isinstance(losers[0], ReservationAlreadyClosed)
    ledger = await pg_adapter.view.snapshot()
    wins = sum(1 for o in outcomes[::2] if not isinstance(o, BaseException))
    assert ledger.accounts == {1: (100_000 - wins * 1000, 0)}
    check_invariants(ledger)


async def test_one_order_id_raced_by_different_users(pg_adapter: Adapter) -> None:
    for user in range(1, 11):
        await run(pg_adapter, deposit, Deposit(user, rub("10")))
    outcomes = await settle(
        *(run(pg_adapter, reserve, Reserve(user, 1, 555, rub("5"))) for user in range(1, 11))
    )
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(won) == 1
    assert all(isinstance(f, OrderAlreadyUsed) for f in failures(outcomes))
    ledger = await pg_adapter.view.snapshot()
    assert sum(reserved for _, reserved in ledger.accounts.values()) == 500
    check_invariants(ledger)


async def test_mixed_storm_keeps_every_invariant(pg_adapter: Adapter) -> None:
    for user in range(1, 6):
        await run(pg_adapter, deposit, Deposit(user, rub("50")))
    calls = []
    for i in range(400):
        user, other = i % 5 + 1, (i * 3) % 5 + 1
        order = i // 2 + 1
        calls += [
            run(pg_adapter, transfer, Transfer(user, other, Money(i % 700 + 1))),
            run(pg_adapter, reserve, Reserve(user, i % 3 + 1, order, Money(i % 900 + 1))),
            run(pg_adapter, cancel, Cancel(order, user, i % 3 + 1)),
        ]
    outcomes = await settle(*calls)
    unexpected = [f for f in failures(outcomes) if not isinstance(f, DomainError)]
    assert unexpected == []
    check_invariants(await pg_adapter.view.snapshot())


async def test_reserves_racing_against_a_credit_limit_win_exactly_as_it_allows(
    pg_adapter: Adapter,
) -> None:
    """No money, a limit of 100.00: of 200 racing reserves of 10.00, exactly 10 win,
    with a limit change racing them all the way (it takes the same lock)."""
    await run(pg_adapter, set_limits, SetLimits(1, rub("100"), False))
    reserves = [
        run(pg_adapter, reserve, Reserve(1, 1, order, rub("10"))) for order in range(1, 201)
    ]
    same_limit = [run(pg_adapter, set_limits, SetLimits(1, rub("100"), False)) for _ in range(20)]
    outcomes = await settle(*reserves, *same_limit)
    won = [o for o in outcomes[:200] if not isinstance(o, BaseException)]
    assert len(won) == 10
    assert all(isinstance(f, InsufficientFunds) for f in failures(outcomes)), failures(outcomes)[:3]
    ledger = await pg_adapter.view.snapshot()
    assert ledger.accounts == {1: (-10_000, 10_000)}
    check_invariants(ledger)


async def test_movements_racing_against_a_credit_limit_win_exactly_as_it_allows(
    pg_adapter: Adapter,
) -> None:
    """50.00 and a limit of 50.00: of 100 racing three-leg movements taking 5.00 from
    user 1 each, exactly 20 win, whatever the order of the users they lock."""
    await run(pg_adapter, deposit, Deposit(1, rub("50")))
    await run(pg_adapter, set_limits, SetLimits(1, rub("50"), False))
    calls = []
    for i in range(100):
        payee, fee = 2 + i % 7, 10 + i % 3
        legs = [Leg(payee, rub("4.50")), Leg(1, Money(-500)), Leg(fee, rub("0.50"))]
        calls.append(run(pg_adapter, move, Move.of(legs)))
    outcomes = await settle(*calls)
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(won) == 20
    refused = failures(outcomes)
    assert all(isinstance(f, LegRefused) and f.index == 1 for f in refused), refused[:3]
    ledger = await pg_adapter.view.snapshot()
    assert ledger.accounts[1] == (-5_000, 0)
    assert sum(available for available, _ in ledger.accounts.values()) == 5_000
    check_invariants(ledger)
