"""Random sequences of every operation, on both adapters, against a simple reference model.

Single commands, and bursts of concurrent ones through a batcher (many commands in
one database transaction). After every step: every answer is what the model, one
command at a time, says it is; the ledger invariants hold; and each user's
balances equal the model's (plain integers, no ledger).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from adapters.postgres.audit import audit
from adapters.postgres.engine import create_engine
from adapters.postgres.movements import PostgresMovementBatch
from adapters.postgres.reports import PostgresRevenueReports
from adapters.postgres.uow import PostgresUnitOfWork
from application.cancel import Cancel, cancel
from application.deposit import Deposit, deposit
from application.errors import RefusedBefore
from application.events import Event, events_after
from application.limits import SetLimits, set_limits
from application.move import Move, move
from application.ports import StoredResponse
from application.recognize import Recognize, recognize
from application.reserve import Reserve, reserve
from application.runner import MoneyMovements
from application.transfer import Transfer, transfer
from application.withdraw import Withdraw, withdraw
from application.work import unrendered
from domain.errors import DomainError
from domain.money import Money
from domain.movement import Leg
from tests import postgres
from tests.conftest import Adapter, memory
from tests.helpers import blind_first, keep, run
from tests.ledger_view import PostgresLedgerView, check_invariants

users = st.integers(min_value=1, max_value=4)
services = st.integers(min_value=1, max_value=3)
orders = st.integers(min_value=1, max_value=12)
amounts = st.integers(min_value=1, max_value=3_000)


def _legs(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    chosen = draw(st.lists(users, min_size=2, max_size=4, unique=True))
    signed = st.integers(-3_000, 3_000).filter(bool)
    amounts_ = [draw(signed) for _ in chosen[1:]]
    last = -sum(amounts_)
    if not last:
        amounts_[0] += 1
        last -= 1
    return tuple(zip(chosen, [*amounts_, last], strict=True))


movements = st.composite(_legs)()


Op = tuple[Any, ...]


class Model:
    """What the balances must be, by plain arithmetic, one command at a time."""

    def __init__(self) -> None:
        self.available: dict[int, int] = {}
        self.reserved: dict[int, int] = {}
        self.limit: dict[int, int] = {}
        self.frozen: set[int] = set()
        self.paid_in = 0  # deposits less withdrawals: all the money users and revenue hold
        self.revenue = 0
        self.orders: dict[int, tuple[int, int, int, str]] = {}  # user, service, amount, status
        self.due: set[int] = set()  # orders whose expires_at has passed

    def can_spend(self, user: int, amount: int) -> bool:
        """A debit: not frozen, and available stays at or above minus the credit limit
        (held money is not available)."""
        return (
            user in self.available
            and user not in self.frozen
            and self.available[user] - amount >= -self.limit.get(user, 0)
        )

    def credit(self, user: int, amount: int) -> None:
        self.available[user] = self.available.get(user, 0) + amount
        self.reserved.setdefault(user, 0)

    def begin_batch(self, ops: list[Op]) -> None:
        """What a batch does before its commands: it expires the due reservations it
        locked, when it also locked their owner."""
        users = {u for op in ops for u in USERS_OF[op[0]](op)}
        named = {op[ORDER_AT[op[0]]] for op in ops if op[0] in ORDER_AT}
        for order in sorted(named & self.due):
            if self.orders[order][0] in users:
                self.expire(order)

    def expire(self, order: int) -> None:
        user, service, held, status = self.orders[order]
        self.due.discard(order)
        if status == "reserved":
            self.reserved[user] -= held
            self.available[user] += held
            self.orders[order] = (user, service, held, "expired")

    def sweep(self) -> None:
        for order in sorted(self.due):
            self.expire(order)

    def apply(self, op: Op) -> tuple[bool, bool]:
        """(whether the command succeeds, whether it may also be refused: never here)."""
        return getattr(self, f"_{op[0]}")(*op[1:]), False

    def _deposit(self, user: int, amount: int) -> bool:
        self.credit(user, amount)
        self.paid_in += amount
        return True

    def _withdraw(self, user: int, amount: int) -> bool:
        if not self.can_spend(user, amount):
            return False
        self.available[user] -= amount
        self.paid_in -= amount
        return True

    def _limits(self, user: int, limit: int, frozen: bool) -> bool:
        self.credit(user, 0)
        self.limit[user] = limit
        (self.frozen.add if frozen else self.frozen.discard)(user)
        return True

    def _move(self, legs: tuple[tuple[int, int], ...]) -> bool:
        """All or nothing: every negative leg a debit its user can make."""
        if not all(self.can_spend(user, -amount) for user, amount in legs if amount < 0):
            return False
        for user, amount in legs:
            self.credit(user, amount)
        return True

    def _transfer(self, sender: int, receiver: int, amount: int) -> bool:
        if sender == receiver or not self.can_spend(sender, amount):
            return False
        self.available[sender] -= amount
        self.credit(receiver, amount)
        return True

    def _reserve(self, user: int, service: int, order: int, amount: int) -> bool:
        known = self.orders.get(order)
        if known is not None:
            return known[:3] == (user, service, amount) and known[3] != "expired"
        if not self.can_spend(user, amount):
            return False
        self.available[user] -= amount
        self.reserved[user] += amount
        self.orders[order] = (user, service, amount, "reserved")
        return True

    def _recognize(self, order: int, user: int, service: int, amount: int) -> bool:
        known = self.orders.get(order)
        if known is None or known[:2] != (user, service):
            return False
        held, status = known[2], known[3]
        if status == f"recognized:{amount}":
            return True
        if status != "reserved" or amount > held:
            return False
        self.reserved[user] -= held
        self.available[user] += held - amount
        self.orders[order] = (user, service, held, f"recognized:{amount}")
        self.revenue += amount
        return True

    def _cancel(self, order: int, user: int, service: int) -> bool:
        known = self.orders.get(order)
        if known is None or known[:2] != (user, service):
            return False
        if known[3] == "cancelled":
            return True
        if known[3] != "reserved":
            return False
        self.reserved[user] -= known[2]
        self.available[user] += known[2]
        self.orders[order] = (user, service, known[2], "cancelled")
        return True


USERS_OF: dict[str, Any] = {
    "deposit": lambda op: [op[1]],
    "withdraw": lambda op: [op[1]],
    "transfer": lambda op: [op[1], op[2]],
    "reserve": lambda op: [op[1]],
    "recognize": lambda op: [op[2]],
    "cancel": lambda op: [op[2]],
    "limits": lambda op: [op[1]],
    "move": lambda op: [user for user, _ in op[1]],
}
ORDER_AT = {"reserve": 3, "recognize": 1, "cancel": 1}

COMMANDS: dict[str, tuple[Any, Any]] = {
    "deposit": (deposit, lambda u, a: Deposit(u, Money(a))),
    "withdraw": (withdraw, lambda u, a: Withdraw(u, Money(a))),
    "transfer": (transfer, lambda s, r, a: Transfer(s, r, Money(a))),
    "reserve": (reserve, lambda u, s, o, a: Reserve(u, s, o, Money(a))),
    "recognize": (recognize, lambda o, u, s, a: Recognize(o, u, s, Money(a))),
    "cancel": (cancel, Cancel),
    "limits": (set_limits, lambda u, limit, frozen: SetLimits(u, Money(limit), frozen)),
    "move": (move, lambda legs: Move.of([Leg(u, Money(a)) for u, a in legs])),
}


class LedgerMachine(RuleBasedStateMachine):
    database_url: str | None = None  # set for the PostgreSQL run

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.model = Model()
        self.answered: list[tuple[Op, str, StoredResponse]] = []  # keyed, applied
        self.keys = itertools.count()  # each keyed command's own
        self.engine: Any = None
        if self.database_url is None:
            self.adapter = memory()
        else:
            url = self.database_url
            self.loop.run_until_complete(postgres.truncate(url))
            self.engine = engine = create_engine(url, pool_size=2)
            self.adapter = Adapter(
                "postgres",
                lambda: PostgresUnitOfWork(engine),
                PostgresLedgerView(url),
                lambda: postgres.truncate(url),
                lambda: PostgresRevenueReports(engine),
                lambda: PostgresMovementBatch(engine),
                lambda order_id: postgres.make_due(url, order_id),
                lambda ahead, user_id: postgres.written_ahead(url, ahead, user_id),
            )

    def teardown(self) -> None:
        if self.engine is not None:
            self.loop.run_until_complete(self.engine.dispose())
        self.loop.close()

    def check(self, op: Op, outcome: Any) -> bool:
        expected, _ = self.model.apply(op)
        refused = isinstance(outcome, DomainError)
        assert not isinstance(outcome, BaseException) or refused, outcome
        assert refused != expected, (op, outcome)
        return refused

    def one(self, op: Op) -> None:
        holds_due = bool(self.model.due)
        self.model.begin_batch([op])
        use_case, make = COMMANDS[op[0]]
        before = self.loop.run_until_complete(self.adapter.view.snapshot())
        try:
            outcome = self.loop.run_until_complete(run(self.adapter, use_case, make(*op[1:])))
        except DomainError as refusal:
            outcome = refusal
        if self.check(op, outcome) and not holds_due:
            # A refusal writes nothing (with a hold due, its batch expires it first).
            assert self.loop.run_until_complete(self.adapter.view.snapshot()) == before, op

    @rule(data=st.data())
    def keyed(self, data: st.DataObject) -> None:
        """Any command under a key of its own, remembered for retries: applied, with its
        answer; refused, with its refusal, which writes nothing but that answer."""
        op = data.draw(self.any_op(), label="op")
        key = f"key-{next(self.keys)}"
        holds_due = bool(self.model.due)
        self.model.begin_batch([op])
        use_case, make = COMMANDS[op[0]]
        before = self.loop.run_until_complete(self.adapter.view.snapshot())
        try:
            stored: Any = self.loop.run_until_complete(
                self.adapter.movements.execute(use_case, make(*op[1:]), keep, key)
            )
        except DomainError as refusal:
            stored = refusal
        if self.check(op, stored):
            after = self.loop.run_until_complete(self.adapter.view.snapshot())
            assert after.idempotency_keys == before.idempotency_keys + 1, op
            if not holds_due:
                assert replace(after, idempotency_keys=before.idempotency_keys) == before, op
            stored = unrendered(stored)
        self.answered.append((op, key, stored))

    @rule(data=st.data())
    def a_retry_under_its_key(self, data: st.DataObject) -> None:
        """A keyed command sent again is answered as the first time and changes
        nothing, whatever the ledger became since: through a worker whose first lock
        does not see the answer (as a PostgreSQL lock that waited for the first run's
        row does), which must find it all the same, and through one whose lock does."""
        if not self.answered:
            return
        op, key, first = data.draw(st.sampled_from(self.answered), label="retried")
        self.model.begin_batch([op])  # its batch expires the due holds it locks
        use_case, make = COMMANDS[op[0]]
        for worker in (blind_first(self.adapter)[0], self.adapter.movements):
            sent = worker.execute(use_case, make(*op[1:]), keep, key)
            try:
                again = self.loop.run_until_complete(sent)
            except RefusedBefore as refused:
                again = refused.response
            assert again == first, (op, again, first)

    @initialize()
    def open_some_accounts(self) -> None:
        for user in (1, 2):
            self.one(("deposit", user, 10_000))

    @rule(user=users, amount=amounts)
    def deposit(self, user: int, amount: int) -> None:
        self.one(("deposit", user, amount))

    @rule(user=users, amount=amounts)
    def withdraw(self, user: int, amount: int) -> None:
        self.one(("withdraw", user, amount))

    @rule(user=users)
    def drain(self, user: int) -> None:
        """All a user has, withdrawn: a balance of exactly 0, and the commands before
        it that a retry would find refused if it ran them again."""
        available = self.model.available.get(user, 0)
        if available > 0:
            self.one(("withdraw", user, available))

    @rule(sender=users, receiver=users, amount=amounts)
    def transfer(self, sender: int, receiver: int, amount: int) -> None:
        self.one(("transfer", sender, receiver, amount))

    @rule(user=users, service=services, order=orders, amount=amounts)
    def reserve(self, user: int, service: int, order: int, amount: int) -> None:
        self.one(("reserve", user, service, order, amount))

    @rule(user=users, limit=st.sampled_from([0, 500, 5_000]), frozen=st.booleans())
    def set_limits(self, user: int, limit: int, frozen: bool) -> None:
        self.one(("limits", user, limit, frozen))

    @rule(legs=movements)
    def move(self, legs: tuple[tuple[int, int], ...]) -> None:
        self.one(("move", legs))

    @rule(data=st.data())
    def recognize(self, data: st.DataObject) -> None:
        self.one(data.draw(self.recognitions()))

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        self.one(data.draw(self.cancellations()))

    @rule(data=st.data(), max_batch=st.integers(1, 8))
    def burst(self, data: st.DataObject, max_batch: int) -> None:
        """Several commands at once through one batcher: each answer, and the ledger
        after, as if they had been applied one at a time in the order sent."""
        ops = data.draw(st.lists(self.any_op(), min_size=2, max_size=10), label="ops")
        batcher = MoneyMovements(self.adapter.batch, max_batch=max_batch, max_in_flight=1)

        async def send(op: Op) -> Any:
            use_case, make = COMMANDS[op[0]]
            return await batcher.execute(use_case, make(*op[1:]), keep)

        async def all_at_once() -> list[Any]:
            return await asyncio.gather(*(send(op) for op in ops), return_exceptions=True)

        outcomes = self.loop.run_until_complete(all_at_once())
        for start in range(0, len(ops), max_batch):  # the batches the queue made, in order
            chunk = list(range(start, min(start + max_batch, len(ops))))
            self.model.begin_batch([ops[i] for i in chunk])
            for i in chunk:
                self.check(ops[i], outcomes[i])

    @rule(data=st.data())
    def an_hold_runs_out(self, data: st.DataObject) -> None:
        """A reservation reaches its expires_at (on the store's clock)."""
        open_ = sorted(
            o for o, (_, _, _, status) in self.model.orders.items() if status == "reserved"
        )
        if not open_:
            return
        order = data.draw(st.sampled_from(open_), label="order due")
        self.loop.run_until_complete(self.adapter.make_due(order))
        self.model.due.add(order)

    @rule()
    def the_sweeper_passes(self) -> None:
        sent = self.loop.run_until_complete(self.adapter.sweeper().sweep())
        assert sent == len([o for o in self.model.due if self.model.orders[o][3] == "reserved"])
        self.model.sweep()

    def any_op(self) -> st.SearchStrategy[Op]:
        return st.one_of(
            st.tuples(st.just("deposit"), users, amounts),
            st.tuples(st.just("withdraw"), users, amounts),
            st.tuples(st.just("transfer"), users, users, amounts),
            st.tuples(st.just("reserve"), users, services, orders, amounts),
            self.recognitions(),
            self.cancellations(),
            st.tuples(st.just("limits"), users, st.sampled_from([0, 500, 5_000]), st.booleans()),
            st.tuples(st.just("move"), movements),
        )

    def known(self) -> st.SearchStrategy[tuple[int, int, int, int]]:
        """Mostly an order the model knows (as order, user, service, amount held),
        sometimes any id: unknown orders are refused."""
        known = [(o, u, s, a) for o, (u, s, a, _) in sorted(self.model.orders.items())]
        anything = st.tuples(orders, st.just(1), st.just(1), st.just(1))
        return st.one_of(st.sampled_from(known), anything) if known else anything

    def recognitions(self) -> st.SearchStrategy[Op]:
        return self.known().flatmap(
            lambda k: (
                st.sampled_from([k[3], k[3] - 1, k[3] + 1, 1])
                .filter(lambda a: a >= 1)
                .map(lambda a: ("recognize", k[0], k[1], k[2], a))
            )
        )

    def cancellations(self) -> st.SearchStrategy[Op]:
        return self.known().map(lambda k: ("cancel", k[0], k[1], k[2]))

    @invariant()
    def ledger_holds_and_matches_the_model(self) -> None:
        ledger = self.loop.run_until_complete(self.adapter.view.snapshot())
        check_invariants(ledger)
        expected = {
            u: (self.model.available[u], self.model.reserved[u]) for u in self.model.available
        }
        assert ledger.accounts == expected
        limits = {u: (self.model.limit.get(u, 0), u in self.model.frozen) for u in expected}
        assert {u: found[:2] for u, found in ledger.limits.items()} == limits
        # Money is conserved: what users hold and revenue earned is what was paid in.
        held = sum(available + reserved for available, reserved in ledger.accounts.values())
        revenue = sum(e.amount for e in ledger.entries if e.account == "revenue")
        assert held + revenue == self.model.paid_in
        assert revenue == self.model.revenue

    @invariant()
    def the_production_check_finds_it_sound(self) -> None:
        """`balance verify` agrees (PostgreSQL only): no false alarm after any history of
        limits, debts, freezes, legs, holds run out and retries."""
        if self.database_url is not None:
            found = self.loop.run_until_complete(audit(self.database_url))
            assert found.holds, [f for f in found.findings if f.broken]

    @invariant()
    def events_count_up_and_end_at_each_balance(self) -> None:
        """The outbox tells the same story: per user, user_seq 1, 2, 3... and the last
        event's balances are the account's (expiries and limit changes included)."""
        events = self.loop.run_until_complete(events_after(self.adapter.uow, 0, 100_000))
        assert [e.event_id for e in events] == list(range(1, len(events) + 1))
        last: dict[int, Event] = {}
        for stored in events:
            event = stored.event
            before = last.get(event.user_id)
            assert event.user_seq == (before.user_seq + 1 if before else 1)
            start = (before.available, before.reserved) if before else (0, 0)
            moved = (start[0] + event.available_delta, start[1] + event.reserved_delta)
            assert (event.available, event.reserved) == moved, stored
            last[event.user_id] = event
        balances = {
            u: (self.model.available[u], self.model.reserved[u]) for u in self.model.available
        }
        assert {u: (e.available, e.reserved) for u, e in last.items()} == {
            u: b for u, b in balances.items() if u in last
        }


def test_ledger_machine_on_memory() -> None:
    run_machine(LedgerMachine, max_examples=60, steps=40)


@pytest.mark.postgres
def test_ledger_machine_on_postgres(pg_url: str) -> None:
    machine = type("PostgresLedgerMachine", (LedgerMachine,), {"database_url": pg_url})
    run_machine(machine, max_examples=12, steps=25)


def run_machine(machine: type[RuleBasedStateMachine], max_examples: int, steps: int) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
