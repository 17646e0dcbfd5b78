"""Each phase of the movement engine alone: the batcher with no money in it, the retry
policy as a table, apply with no I/O, and the write set's statement from row types."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest

from adapters.memory.store import InMemoryMovementBatch, InMemoryStore
from adapters.postgres.write_set import Insert, Update, Write, WriteSet, arrays, columns
from application.apply import apply
from application.batcher import Batcher
from application.deposit import Deposit, deposit
from application.errors import (
    ConcurrentUpdate,
    IdempotencyKeyReused,
    OperationRefused,
    RequestInProgress,
    RowsBusy,
    StoreUnavailable,
)
from application.policy import after_failure
from application.ports import Changes, IdempotencyRecord, Locked, StoredResponse
from application.reserve import Reserve, reserve
from application.runner import MoneyMovements
from application.withdraw import Withdraw, withdraw
from application.work import Answer, Job, client_batch, look_at, single
from domain.account import UserAccount
from domain.errors import InsufficientFunds
from domain.money import Money
from domain.reservation import Reservation, ReservationStatus
from tests.helpers import keep, rub

# -- the batcher ---------------------------------------------------------------------


@dataclass(eq=False)
class Item:
    name: str
    keys: tuple[str, ...] = ()
    resources: tuple[Hashable, ...] = ()
    size: int = 1
    future: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Runs:
    """A run function that records each batch and answers its items, but gives back
    those told to."""

    def __init__(self, give_back: dict[str, Hashable] | None = None) -> None:
        self.batches: list[tuple[list[str], Hashable | None]] = []
        self._give_back = give_back or {}
        self.running = self.most = 0  # batches at once

    async def __call__(self, batch: list[Item], lane: Hashable | None) -> dict[Item, Hashable]:
        self.batches.append(([item.name for item in batch], lane))
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.05 if lane is not None else 0.01)  # waiting takes longer
        self.running -= 1
        back = {i: self._give_back.pop(i.name) for i in batch if i.name in self._give_back}
        for item in batch:
            if item not in back:
                item.future.set_result(item.name)
        return back


async def all_of(batcher: Batcher[Item], items: list[Item]) -> list[Any]:
    for item in items:
        batcher.submit(item)
    return await asyncio.gather(*(item.future for item in items))


async def test_a_batch_is_what_queued_in_one_turn_up_to_the_maximum() -> None:
    runs = Runs()
    batcher = Batcher(runs, max_batch=3, max_in_flight=1)
    items = [Item(str(i)) for i in range(7)] + [Item("big", size=3)]
    assert await all_of(batcher, items) == [*map(str, range(7)), "big"]
    assert runs.batches == [
        (["big"], None),  # as big as a batch: one already, run at once
        (["0", "1", "2"], None),
        (["3", "4", "5"], None),
        (["6"], None),
    ]


async def test_two_items_sharing_a_key_are_never_in_flight_together() -> None:
    runs = Runs()
    batcher = Batcher(runs, max_batch=10, max_in_flight=2)
    items = [Item("a", keys=("k",)), Item("b", keys=("k",)), Item("c")]
    await all_of(batcher, items)
    assert runs.batches == [(["a", "c"], None), (["b"], None)]


async def test_items_given_back_wait_in_their_resources_lane_with_those_that_name_it() -> None:
    runs = Runs(give_back={"a": ("user", 1)})
    batcher = Batcher(runs, max_batch=10, max_in_flight=1)
    a = Item("a", resources=(("user", 1),))
    batcher.submit(a)
    await asyncio.sleep(0.02)  # a was given back: its lane's batch waits for user 1
    later = [Item("b", resources=(("user", 1), ("user", 2))), Item("c", resources=(("user", 3),))]
    assert await all_of(batcher, later) == ["b", "c"]
    assert await a.future == "a"
    assert runs.batches[:2] == [(["a"], None), (["a"], ("user", 1))]
    # b names user 1: it waits in the lane, after a; c does not wait for it.
    assert sorted(runs.batches[2:]) == [(["b"], ("user", 1)), (["c"], None)]
    assert runs.batches.index((["c"], None)) < runs.batches.index((["b"], ("user", 1)))


class Stalled:
    """A run function whose batches end only once `go` is set (a frozen store)."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.batches: list[list[str]] = []

    async def __call__(self, batch: list[Item], lane: Hashable | None) -> dict[Item, Hashable]:
        self.batches.append([item.name for item in batch])
        await self.go.wait()
        for item in batch:
            item.future.set_result(item.name)
        return {}


def unrun(items: list[Item]) -> list[str]:
    """The items failed as waited too long, nothing done."""
    failed = [i.future.exception() for i in items if i.future.done()]
    return [
        str(e)
        for e in failed
        if isinstance(e, StoreUnavailable) and e.outcome_known and "waited over 0.05 s" in str(e)
    ]


async def test_an_item_that_waited_past_max_wait_is_answered_unrun_when_the_next_comes() -> None:
    runs, shed = Stalled(), list[int]()
    batcher = Batcher(runs, max_batch=10, max_in_flight=1, max_wait=0.05, shed=shed.append)
    first = Item("first")
    batcher.submit(first)
    await asyncio.sleep(0)  # in flight, stalled
    stale = [Item("a"), Item("b", keys=("k",))]
    for item in stale:
        batcher.submit(item)
    await asyncio.sleep(0.1)
    assert not any(item.future.done() for item in stale)  # nothing came to tell
    fresh = Item("fresh")
    batcher.submit(fresh)  # the queue stalls: its dispatch answers the stale
    await asyncio.sleep(0)
    assert len(unrun(stale)) == 2
    assert shed == [2]
    runs.go.set()
    assert (await first.future, await fresh.future) == ("first", "fresh")
    assert runs.batches == [["first"], ["fresh"]]


async def test_items_that_waited_past_max_wait_are_not_run_when_the_queue_moves() -> None:
    runs, shed = Stalled(), list[int]()
    batcher = Batcher(runs, max_batch=10, max_in_flight=1, max_wait=0.05, shed=shed.append)
    first = Item("first")
    batcher.submit(first)
    await asyncio.sleep(0)
    stale = [Item(str(i)) for i in range(25)]
    for item in stale:
        batcher.submit(item)
    await asyncio.sleep(0.1)
    runs.go.set()
    assert await first.future == "first"
    await asyncio.sleep(0.01)
    assert len(unrun(stale)) == 25  # all at once, not a batch at a time
    assert (shed, runs.batches) == ([25], [["first"]])


async def test_without_max_wait_an_item_waits_as_long_as_the_queue_does() -> None:
    runs = Stalled()
    batcher = Batcher(runs, max_batch=10, max_in_flight=1)
    items = [Item("first"), Item("a")]
    batcher.submit(items[0])
    await asyncio.sleep(0.1)
    batcher.submit(items[1])
    await asyncio.sleep(0.1)
    batcher.submit(Item("b"))
    runs.go.set()
    assert await asyncio.gather(*(i.future for i in items)) == ["first", "a"]


# -- the policy ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    name: str
    keys: tuple[str, ...] = ()

    @property
    def replayable(self) -> bool:
        return bool(self.keys)


A, B, K1, K2 = Pending("a"), Pending("b"), Pending("k1", ("k1",)), Pending("k2", ("k2",))


def test_a_passing_failure_runs_the_batch_again_until_the_last_attempt() -> None:
    lost = StoreUnavailable("connection lost")
    assert after_failure(lost, [A, K1], last=False).retry == [A, K1]
    last = after_failure(lost, [A, K1], last=True)
    assert (last.retry, [r for r, _ in last.failed]) == ([], [A, K1])
    contention = after_failure(ConcurrentUpdate("created meanwhile"), [A], last=False)
    assert contention.retry == [A]


def test_a_database_slow_to_fail_is_not_tried_again_a_race_lost_is() -> None:
    slow = after_failure(StoreUnavailable("connect timed out"), [A, K1], last=False, slow=True)
    assert (slow.retry, [r for r, _ in slow.failed]) == ([], [A, K1])
    raced = after_failure(ConcurrentUpdate("created meanwhile"), [A], last=False, slow=True)
    assert raced.retry == [A]


@pytest.mark.parametrize(("lost", "answered"), [(4, True), (5, False)])
async def test_races_lost_are_counted_apart_from_the_other_failures(
    lost: int, answered: bool
) -> None:
    """Two attempts for failures, five for races lost: four races lost in a row still
    end in the movement; a fifth is 503, and nothing was written."""
    store = InMemoryStore()
    races: list[int] = []

    class RacesLost(InMemoryMovementBatch):
        async def write(self, changes: Changes) -> None:
            if len(races) < lost:
                races.append(1)
                raise ConcurrentUpdate("created meanwhile")
            await super().write(changes)

    runner = MoneyMovements(lambda: RacesLost(store), attempts=2, races=5, backoff=0)
    if answered:
        await runner.execute(deposit, Deposit(1, rub("5")), keep)
        assert store.accounts[1].available == rub("5")
    else:
        with pytest.raises(StoreUnavailable, match="contention"):
            await runner.execute(deposit, Deposit(1, rub("5")), keep)
        assert store.accounts == {}
    assert len(races) == lost


def test_an_unknown_commit_outcome_runs_again_only_what_a_key_makes_safe() -> None:
    unknown = StoreUnavailable("lost at commit", outcome_known=False)
    step = after_failure(unknown, [A, K1, B], last=False)
    assert step.retry == [K1]
    assert [(r, e) for r, e in step.failed] == [(A, unknown), (B, unknown)]


def test_rows_held_past_the_lock_timeout_fail_at_once() -> None:
    busy = RowsBusy()
    step = after_failure(busy, [A, K1], last=False)
    assert (step.retry, step.apart, [r for r, _ in step.failed]) == ([], [], [A, K1])


def test_a_key_held_elsewhere_runs_the_unkeyed_at_once_and_splits_the_keyed() -> None:
    step = after_failure(RequestInProgress(), [A, K1, B, K2], last=False)
    assert step.apart == [[A, B], [K1], [K2]]
    alone = after_failure(RequestInProgress(), [K1], last=False)
    assert [r for r, _ in alone.failed] == [K1]


def test_an_error_one_request_caused_is_found_by_splitting() -> None:
    error = ValueError("a database refusal")
    assert after_failure(error, [A, B, K1], last=False).apart == [[A, B], [K1]]
    assert after_failure(error, [A], last=False).failed == [(A, error)]


# -- apply: pure ---------------------------------------------------------------------

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def locked(
    accounts: dict[int, int],
    reservations: dict[int, Reservation] | None = None,
    answers: dict[str, IdempotencyRecord] | None = None,
) -> Locked:
    return Locked(
        accounts={u: UserAccount(u, Money(k), Money(0)) for u, k in accounts.items()},
        reservations=reservations or {},
        answers=answers or {},
        now=NOW,
        transaction_ids=list(range(100, 120)),
    )


async def test_apply_answers_each_request_and_writes_only_what_was_kept() -> None:
    requests = [
        single(Job.of(deposit, Deposit(1, rub("5")), keep)),
        single(Job.of(withdraw, Withdraw(1, rub("100")), keep)),  # refused
        single(Job.of(withdraw, Withdraw(1, rub("15")), keep, "w")),
    ]
    applied = apply(locked({1: 1000}), requests)
    answers = [applied.answers[r] for r in requests]
    assert isinstance(answers[0], Answer)
    assert isinstance(answers[1], InsufficientFunds)
    assert isinstance(answers[2], Answer)
    assert [a.available.kopecks for a in applied.changes.saved] == [0]
    assert [tx_id for tx_id, _, _ in applied.changes.transactions] == [100, 101]
    assert list(applied.changes.answers) == ["w"]


async def test_an_atomic_batch_refused_keeps_nothing_of_its_operations() -> None:
    jobs = [
        Job.of(deposit, Deposit(1, rub("5")), keep, "d"),
        Job.of(withdraw, Withdraw(1, rub("100")), keep),
    ]
    atomic = client_batch(jobs, lambda _: StoredResponse(200, b""), atomic=True, key=None)
    after = single(Job.of(deposit, Deposit(2, rub("1")), keep))
    applied = apply(locked({1: 1000}), [atomic, after])
    refused = applied.answers[atomic]
    assert isinstance(refused, OperationRefused)
    assert refused.index == 1
    assert [a.user_id for a in applied.changes.opened] == [2]
    assert applied.changes.saved == []
    # Nothing of the deposit is kept but its key's answer: not applied, with its batch.
    assert list(applied.changes.answers) == ["d"]
    stored = applied.changes.answers["d"].response
    assert stored.status == 409
    assert json.loads(stored.body) == {
        "type": "RefusedWithBatch",
        "status": 409,
        "detail": "not applied: operations[1] of its atomic batch was refused",
    }


async def test_a_stored_answer_replays_and_another_request_under_its_key_is_refused() -> None:
    job = Job.of(deposit, Deposit(1, rub("5")), keep, "k")
    stored = {"k": IdempotencyRecord(job.fingerprint, StoredResponse(201, b"first"))}
    again = single(job)
    other = single(Job.of(deposit, Deposit(1, rub("6")), keep, "k"))
    applied = apply(locked({1: 0}, answers=stored), [again, other])
    replayed = applied.answers[again]
    assert isinstance(replayed, Answer)
    assert replayed.response == StoredResponse(201, b"first")
    assert isinstance(applied.answers[other], IdempotencyKeyReused)
    assert not applied.changes


async def test_the_expiry_step_releases_due_holds_the_batch_locked_with_their_owner() -> None:
    due = Reservation(7, 1, 3, Money(400), created_at=NOW, expires_at=NOW - timedelta(seconds=1))
    later = Reservation(8, 1, 3, Money(100), created_at=NOW, expires_at=NOW + timedelta(hours=1))
    state = locked({1: 0}, {7: due, 8: later})
    state.accounts[1].reserved = Money(500)
    applied = apply(state, [look_at(1, 7), look_at(1, 8)])
    assert applied.expired == 1
    assert [(r.order_id, r.status) for r in applied.changes.closed] == [
        (7, ReservationStatus.EXPIRED)
    ]
    assert [(a.available, a.reserved) for a in applied.changes.saved] == [(Money(400), Money(100))]
    # A request that touches the expired hold finds it expired, in the same batch.
    touched = single(Job.of(reserve, Reserve(1, 3, 7, Money(400)), keep))
    again = apply(state, [touched])
    assert type(again.answers[touched]).__name__ == "ReservationExpired"


# -- the write set -------------------------------------------------------------------


class Row(NamedTuple):
    id: int
    name: str
    note: str | None
    at: datetime


def test_a_row_types_fields_are_the_columns_and_its_annotations_their_types() -> None:
    assert columns(Row) == [
        ("id", "bigint"),
        ("name", "text"),
        ("note", "text"),
        ("at", "timestamptz"),
    ]
    rows = [Row(1, "a", None, NOW), Row(2, "b", "x", NOW)]
    assert arrays(Row, rows) == [[1, 2], ["a", "b"], [None, "x"], [NOW, NOW]]
    assert arrays(Row, []) == [[], [], [], []]


def test_one_statement_writes_every_row_type_and_counts_what_it_wrote() -> None:
    writes = WriteSet(
        Write("added", Row, Insert("things", if_absent=True)),
        Write("changed", Row, Update("things", "id", only_if="target.name <> 'x'")),
    )
    sql = writes.sql.text
    assert sql.startswith("WITH added AS (INSERT INTO things (id, name, note, at) SELECT")
    # ints, booleans and texts as array literals in text parameters; other types binary
    assert (
        "unnest($1::text::bigint[], $2::text::text[], $3::text::text[], $4::timestamptz[])" in sql
    )
    assert "ON CONFLICT DO NOTHING" in sql
    assert "UPDATE things AS target SET name = r.name, note = r.note, at = r.at" in sql
    assert "WHERE target.id = r.id AND target.name <> 'x'" in sql
    assert writes.sql.names[:2] == ("added_id", "added_name")
    params = writes.params(
        {"added": [Row(1, "a", None, NOW)], "changed": [Row(2, 'b"\\', None, NOW)]}
    )
    assert (params["added_id"], params["added_name"], params["added_note"]) == (
        "{1}",
        '{"a"}',
        "{null}",
    )
    assert params["added_at"] == [NOW]
    assert params["changed_name"] == '{"b\\"\\\\"}'
    # A write with no rows has no arm in its batch's statement, and no parameters.
    assert writes.params({"added": [Row(1, "a", None, NOW)]}).keys() == {
        "added_id",
        "added_name",
        "added_note",
        "added_at",
    }
    rows = {"added": [Row(1, "a", None, NOW)], "changed": [Row(2, "b", None, NOW)]}
    writes.check({"added": 1, "changed": 1}, rows)
    with pytest.raises(ConcurrentUpdate):
        writes.check({"added": 0, "changed": 1}, rows)
    with pytest.raises(AssertionError):
        writes.check({"added": 1, "changed": 0}, rows)


def test_a_column_every_row_shares_is_sent_once() -> None:
    class Slim(NamedTuple):
        id: int

    writes = WriteSet(
        Write("added", Slim, Insert("things", common=("at",))), common={"at": "timestamptz"}
    )
    assert writes.sql.text.startswith(
        "WITH added AS (INSERT INTO things (id, at) SELECT r.id, $1::timestamptz"
        " FROM unnest($2::text::bigint[])"
    )
    assert writes.params({"added": [Slim(1), Slim(2)]}, at=NOW) == {"at": NOW, "added_id": "{1,2}"}


def test_a_write_with_no_rows_is_left_out_of_the_statement() -> None:
    """Each arm costs the server its planning and its table's opening even with no
    rows: the statement a batch runs has the arms of the writes that have rows."""
    writes = WriteSet(
        Write("added", Row, Insert("things", common=("at",))),
        Write("changed", Row, Update("things", "id")),
        common={"at": "timestamptz"},
    )
    changed = {"changed": [Row(2, "b", None, NOW)]}
    only = writes.sql_for(changed)
    assert only is not None
    assert only.text.startswith("WITH changed AS (UPDATE things AS target SET")
    assert "INSERT" not in only.text
    # Numbered from $1: no batch-wide value no arm of it takes.
    assert only.names == ("changed_id", "changed_name", "changed_note", "changed_at")
    assert only.text.endswith("SELECT (SELECT count(*) FROM changed) AS changed")
    assert writes.sql_for(changed) is only  # made once a shape
    both = {**changed, "added": [Row(1, "a", None, NOW)]}
    assert writes.sql_for(both) == writes.sql
    assert writes.sql_for({"added": []}) is None
    writes.check({"changed": 1}, changed)  # a write left out counts 0
    with pytest.raises(AssertionError):
        writes.check({"changed": 0}, changed)


async def test_an_item_as_big_as_a_batch_runs_at_once_beside_the_queue() -> None:
    runs = Runs()
    batcher = Batcher(runs, max_batch=4, max_in_flight=1)
    items = [Item("a"), Item("client batch", size=100), Item("b", keys=("k",))]
    items.append(Item("another client batch", keys=("k",), size=50))  # waits for k
    assert await all_of(batcher, items) == [i.name for i in items]
    assert runs.batches[0] == (["client batch"], None)  # started as it came
    assert (["another client batch"], None) in runs.batches
    assert runs.batches.index((["a", "b"], None)) < runs.batches.index(
        (["another client batch"], None)
    )


async def test_single_items_keep_their_turn_whatever_the_batch_size() -> None:
    runs = Runs()
    batcher = Batcher(runs, max_batch=1, max_in_flight=1)
    assert await all_of(batcher, [Item("a"), Item("b"), Item("c")]) == ["a", "b", "c"]
    assert runs.batches == [(["a"], None), (["b"], None), (["c"], None)]
    assert runs.most == 1
