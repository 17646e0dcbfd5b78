"""Group commit on both adapters: many commands in one database transaction, each
answered exactly as it would be alone."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from application.deposit import Deposit, deposit
from application.errors import IdempotencyKeyReused, RefusedBefore, StoreUnavailable
from application.recognize import Recognize, recognize
from application.reserve import Reserve, reserve
from application.runner import MoneyMovements, Unobserved, UseCase
from application.transfer import Transfer, transfer
from application.withdraw import Withdraw, withdraw
from application.work import Job, client_batch
from domain.errors import (
    InsufficientFunds,
    ReservationNotFound,
    SameUserTransfer,
    UserNotFound,
)
from tests.conftest import Adapter
from tests.helpers import blind_first, keep, outcomes_of, rub, run, unpickled
from tests.ledger_view import check_invariants


class Batches(Unobserved):
    """Counts the commands of every committed batch."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def committed(self, movements: int) -> None:
        self.sizes.append(movements)


def one_worker(adapter: Adapter, batches: Batches, max_batch: int = 64) -> MoneyMovements:
    return MoneyMovements(adapter.batch, max_batch=max_batch, max_in_flight=1, observer=batches)


async def all_at_once(
    movements: MoneyMovements, calls: list[tuple[UseCase[Any, Any], Any, str | None]]
) -> list[Any]:
    sent = (movements.execute(use_case, command, keep, key) for use_case, command, key in calls)
    outcomes = await asyncio.gather(*sent, return_exceptions=True)
    return [o if isinstance(o, BaseException) else unpickled(o) for o in outcomes]


async def test_a_refused_command_leaves_its_batch_mates_alone(adapter: Adapter) -> None:
    await run(adapter, deposit, Deposit(1, rub("100")))
    batches = Batches()
    outcomes = await all_at_once(
        one_worker(adapter, batches),
        [
            (deposit, Deposit(2, rub("5")), None),
            (withdraw, Withdraw(1, rub("1000")), None),  # refused: too much
            (transfer, Transfer(1, 3, rub("10")), None),  # opens user 3
            (transfer, Transfer(4, 1, rub("1")), None),  # refused: no user 4
            (reserve, Reserve(1, 7, 9, rub("20")), None),
            (transfer, Transfer(1, 1, rub("1")), None),  # refused: same user
            (recognize, Recognize(404, 1, 7, rub("1")), None),  # refused: no order
            (recognize, Recognize(9, 1, 7, rub("15")), None),  # the order reserved above
            (withdraw, Withdraw(1, rub("75")), None),  # exactly what is left
        ],
    )
    assert batches.sizes == [9]  # one transaction
    refusals = [type(o) for o in outcomes if isinstance(o, BaseException)]
    assert refusals == [InsufficientFunds, UserNotFound, SameUserTransfer, ReservationNotFound]
    assert outcomes[8].balance.available.kopecks == 0
    ledger = await adapter.view.snapshot()
    # 100 - 10 - 20 + 5 (the rest of order 9 after 15 recognized) - 75
    assert ledger.accounts == {1: (0, 0), 2: (500, 0), 3: (1000, 0)}
    check_invariants(ledger)


async def test_many_movements_on_one_hot_user_each_have_their_balance(adapter: Adapter) -> None:
    batches = Batches()
    calls: list[tuple[UseCase[Any, Any], Any, str | None]] = [
        (deposit, Deposit(1, rub("10")), None)
    ]
    for i in range(63):
        if i % 3 == 2:
            calls.append((withdraw, Withdraw(1, rub("2.50")), None))
        else:
            calls.append((deposit, Deposit(1, rub("1.25")), None))
    outcomes = await all_at_once(one_worker(adapter, batches), calls)
    assert batches.sizes == [64]
    expected = 0
    for (use_case, command, _), outcome in zip(calls, outcomes, strict=True):
        expected += command.amount.kopecks if use_case is deposit else -command.amount.kopecks
        assert outcome.balance.available.kopecks == expected
    ledger = await adapter.view.snapshot()
    assert ledger.accounts == {1: (expected, 0)}
    balances = [e.balance_after for e in ledger.entries if e.user_id == 1]
    assert balances[-1] == expected
    assert len(balances) == 64
    check_invariants(ledger)  # replaying the entries rebuilds every balance_after


async def test_a_deposit_then_a_transfer_from_the_new_user_in_one_batch(adapter: Adapter) -> None:
    batches = Batches()
    outcomes = await all_at_once(
        one_worker(adapter, batches),
        [
            (deposit, Deposit(5, rub("10")), None),
            (transfer, Transfer(5, 6, rub("4")), None),
            (reserve, Reserve(6, 2, 60, rub("3")), None),
            (recognize, Recognize(60, 6, 2, rub("3")), None),
        ],
    )
    assert batches.sizes == [4]
    assert not any(isinstance(o, BaseException) for o in outcomes), outcomes
    ledger = await adapter.view.snapshot()
    assert ledger.accounts == {5: (600, 0), 6: (100, 0)}
    assert [(r.order_id, r.status) for r in ledger.reservations] == [(60, "recognized")]
    check_invariants(ledger)


async def test_keys_in_a_batch_replay_refuse_reuse_and_wait_for_each_other(
    adapter: Adapter,
) -> None:
    first = await adapter.movements.execute(deposit, Deposit(1, rub("3")), keep, "k-1")
    batches = Batches()
    outcomes = await all_at_once(
        one_worker(adapter, batches),
        [
            (deposit, Deposit(1, rub("3")), "k-1"),  # replayed
            (deposit, Deposit(1, rub("4")), "k-1"),  # same key, other request
            (deposit, Deposit(1, rub("5")), "k-2"),  # applied
            (deposit, Deposit(1, rub("5")), "k-2"),  # waits for the one above: replayed
        ],
    )
    assert outcomes[0] == unpickled(first)
    assert isinstance(outcomes[1], IdempotencyKeyReused)
    assert outcomes[2] == outcomes[3]
    assert batches.sizes == [2, 2]  # a key's second command waits for the next batch
    ledger = await adapter.view.snapshot()
    assert ledger.accounts == {1: (800, 0)}
    assert ledger.idempotency_keys == 2


@pytest.mark.parametrize("turns", [0, 1, 3])
async def test_a_caller_that_goes_away_leaves_its_movement_applied_once(
    adapter: Adapter, turns: int
) -> None:
    """Cancelled while its request is queued (0 turns) or in its batch: the request
    is applied all the same, its batch mates are answered, and a retry under its key
    is answered from what it did, not applied again."""
    await run(adapter, deposit, Deposit(1, rub("100")))
    batches = Batches()
    worker = one_worker(adapter, batches)
    gone = asyncio.create_task(worker.execute(deposit, Deposit(1, rub("5")), keep, "k-gone"))
    refused = asyncio.create_task(worker.execute(withdraw, Withdraw(1, rub("900")), keep, None))
    stays = asyncio.create_task(worker.execute(deposit, Deposit(2, rub("7")), keep, None))
    for _ in range(turns + 1):
        await asyncio.sleep(0)
    went = [task.cancel() for task in (gone, refused)]
    # Still queued, or in a batch that waits on PostgreSQL; the memory store may
    # have answered them within those turns (then they were answered, not gone).
    if turns == 0 or adapter.name == "postgres":
        assert went == [True, True]
    assert unpickled(await stays).balance.available == rub("7")
    outcomes = await asyncio.gather(gone, refused, return_exceptions=True)
    assert [isinstance(o, asyncio.CancelledError) for o in outcomes] == went
    again = unpickled(await worker.execute(deposit, Deposit(1, rub("5")), keep, "k-gone"))
    assert again.balance.available == rub("105")
    assert batches.sizes == [3, 1]  # the retry replayed, in a batch of its own
    ledger = await adapter.view.snapshot()
    assert ledger.accounts == {1: (10500, 0), 2: (700, 0)}
    assert ledger.idempotency_keys == 1
    check_invariants(ledger)


async def test_a_full_queue_is_cut_into_batches_of_the_maximum(adapter: Adapter) -> None:
    batches = Batches()
    calls: list[tuple[UseCase[Any, Any], Any, str | None]] = [
        (deposit, Deposit(user, rub("1")), None) for user in range(1, 11)
    ]
    outcomes = await all_at_once(one_worker(adapter, batches, max_batch=4), calls)
    assert not any(isinstance(o, BaseException) for o in outcomes)
    assert batches.sizes == [4, 4, 2]
    assert len({o.transaction_id for o in outcomes}) == 10


async def test_a_batch_is_freed_as_it_ends_with_nothing_left_for_the_collector(
    adapter: Adapter,
) -> None:
    """A batch's state, rows and answers go when their last reference does: one cycle
    among them (a layer pointing at itself did) keeps the whole batch alive until the
    collector walks it, which under load was a tenth of the service's CPU."""
    await run(adapter, deposit, Deposit(1, rub("100")))
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    worker = one_worker(adapter, Batches())  # lives on, as a worker's runner does
    try:
        await all_at_once(
            worker,
            [
                (deposit, Deposit(2, rub("5")), "k-1"),
                (transfer, Transfer(1, 3, rub("10")), None),
                (withdraw, Withdraw(1, rub("1000")), None),  # refused
                (reserve, Reserve(1, 7, 9, rub("20")), None),
            ],
        )
        for _ in range(3):
            await asyncio.sleep(0)  # the batch's task ends after answering
        gc.collect()
        ours = [o for o in gc.garbage if type(o).__module__.split(".")[0] in OUR_PACKAGES]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert sorted({type(o).__qualname__ for o in ours}) == []


OUR_PACKAGES = {"application", "domain", "adapters", "entrypoints"}


async def test_a_keyed_request_refused_for_what_it_did_itself_is_answered_from_it(
    adapter: Adapter,
) -> None:
    """Run again where the batch cannot see its stored answer, a keyed transfer finds
    the money it moved gone and is refused: before answering that, the batch reads its
    key afresh, finds it answered, and runs again, replaying the answer."""
    await run(adapter, deposit, Deposit(1, rub("10")))
    first = await adapter.movements.execute(transfer, Transfer(1, 2, rub("10")), keep, "t-1")
    before = await adapter.view.snapshot()
    worker, locks = blind_first(adapter)
    again = await worker.execute(transfer, Transfer(1, 2, rub("10")), keep, "t-1")
    assert again == first
    assert locks == [1, 1]  # blind, refused, read again: answered; then replayed
    assert await adapter.view.snapshot() == before


async def test_keyed_operations_of_a_client_batch_refused_for_what_they_did_replay(
    adapter: Adapter,
) -> None:
    """The same, for a client's batch: an atomic one under its own key, refused whole,
    and a keyed operation in a batch that is not atomic."""
    await run(adapter, deposit, Deposit(3, rub("5")))
    await run(adapter, deposit, Deposit(4, rub("5")))

    def atomic() -> Any:
        jobs = [Job.of(withdraw, Withdraw(3, rub("5")), keep)]
        return client_batch(jobs, outcomes_of, atomic=True, key="b-1")

    def loose() -> Any:
        jobs = [Job.of(withdraw, Withdraw(4, rub("5")), keep, "w-4")]
        return client_batch(jobs, outcomes_of, atomic=False, key=None)

    first_atomic = (await adapter.movements.submit(atomic())).response
    first_loose = unpickled((await adapter.movements.submit(loose())).response)
    before = await adapter.view.snapshot()
    worker, locks = blind_first(adapter)
    assert (await worker.submit(atomic())).response == first_atomic
    assert locks == [1, 1]
    worker, locks = blind_first(adapter)
    again = unpickled((await worker.submit(loose())).response)
    assert again[0] == (first_loose[0][0], True)  # replayed, not refused
    assert locks == [1, 1]
    assert await adapter.view.snapshot() == before


async def test_a_key_refused_to_its_client_is_not_committed_by_an_earlier_run_retried_later(
    adapter: Adapter,
) -> None:
    """The client's reserve under key K reaches worker A; its batch fails before commit
    (a full disk) and A runs it again later. The client, cut off, sends the same
    request under K to worker B meanwhile: the money is gone by then, so B refuses it,
    409, and the client takes that as the answer. Then money comes in, and A's run goes
    on. While refusals were not stored it committed the reserve (CI's disk-full run
    found it): the key's answer was 409, and the ledger held the money. B's refusal is
    the key's answer now: A's run finds the key taken, runs again and replays it."""
    gate = asyncio.Event()
    writes = 0

    def failing_first(store: Any) -> Any:
        write = store.write

        async def fail_once(changes: Any) -> None:
            nonlocal writes
            writes += 1
            if writes == 1:
                raise StoreUnavailable("no space left on device")  # before its commit
            await write(changes)

        class HeldBack(type(store)):  # type: ignore[misc]
            async def __aenter__(self) -> Any:
                if writes >= 1:
                    await gate.wait()  # A's next run of the batch, held back
                return await super().__aenter__()

        store.write = fail_once
        store.__class__ = HeldBack
        return store

    worker_a = MoneyMovements(lambda: failing_first(adapter.batch()), max_in_flight=1)
    worker_b = adapter.movements
    await run(adapter, deposit, Deposit(1, rub("100")))
    command = Reserve(1, 5, 7, rub("100"))
    first = asyncio.create_task(worker_a.execute(reserve, command, keep, "K"))
    for _ in range(500):
        if writes:
            break
        await asyncio.sleep(0.01)
    await run(adapter, withdraw, Withdraw(1, rub("100")))
    with pytest.raises(InsufficientFunds):  # the answer the client acts on
        await worker_b.execute(reserve, command, keep, "K")
    await run(adapter, deposit, Deposit(1, rub("100")))
    gate.set()
    with pytest.raises(RefusedBefore):
        await first  # its client is gone
    ledger = await adapter.view.snapshot()
    assert 7 not in {r.order_id for r in ledger.reservations}
    with pytest.raises(RefusedBefore):  # and so the key says, wherever it is sent
        await worker_a.execute(reserve, command, keep, "K")
