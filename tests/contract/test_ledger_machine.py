"""Random sequences of every operation, on both adapters, against a simple reference model.

After every step: the ledger invariants hold, and each user's balances equal
what the model (plain integers, no ledger) says they should be.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from adapters.postgres.engine import create_engine
from adapters.postgres.reports import PostgresRevenueReports
from adapters.postgres.uow import PostgresUnitOfWork
from application.cancel import Cancel, cancel
from application.deposit import Deposit, deposit
from application.recognize import Recognize, recognize
from application.reserve import Reserve, reserve
from application.transfer import Transfer, transfer
from application.withdraw import Withdraw, withdraw
from domain.errors import DomainError
from domain.money import Money
from tests import postgres
from tests.conftest import Adapter, memory
from tests.helpers import run
from tests.ledger_view import PostgresLedgerView, check_invariants

users = st.integers(min_value=1, max_value=4)
services = st.integers(min_value=1, max_value=3)
orders = st.integers(min_value=1, max_value=12)
amounts = st.integers(min_value=1, max_value=3_000).map(Money)


class Model:
    """What the balances must be, by plain arithmetic."""

    def __init__(self) -> None:
        self.available: dict[int, int] = {}
        self.reserved: dict[int, int] = {}
        self.orders: dict[int, tuple[int, int, int, str]] = {}  # user, service, amount, status

    def can_spend(self, user: int, amount: int) -> bool:
        return user in self.available and self.available[user] >= amount


class LedgerMachine(RuleBasedStateMachine):
    database_url: str | None = None  # set for the PostgreSQL run

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.model = Model()
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
            )

    def teardown(self) -> None:
        if self.engine is not None:
            self.loop.run_until_complete(self.engine.dispose())
        self.loop.close()

    def apply(self, use_case: Any, command: Any) -> Any:
        try:
            return self.loop.run_until_complete(run(self.adapter, use_case, command))
        except DomainError as refusal:
            return refusal

    @initialize()
    def open_some_accounts(self) -> None:
        for user in (1, 2):
            self.deposit(user, Money(10_000))

    @rule(user=users, amount=amounts)
    def deposit(self, user: int, amount: Money) -> None:
        self.apply(deposit, Deposit(user, amount))
        self.model.available[user] = self.model.available.get(user, 0) + amount.kopecks
        self.model.reserved.setdefault(user, 0)

    @rule(user=users, amount=amounts)
    def withdraw(self, user: int, amount: Money) -> None:
        outcome = self.apply(withdraw, Withdraw(user, amount))
        if self.model.can_spend(user, amount.kopecks):
            assert not isinstance(outcome, DomainError), outcome
            self.model.available[user] -= amount.kopecks
        else:
            assert isinstance(outcome, DomainError)

    @rule(sender=users, receiver=users, amount=amounts)
    def transfer(self, sender: int, receiver: int, amount: Money) -> None:
        outcome = self.apply(transfer, Transfer(sender, receiver, amount))
        if sender != receiver and self.model.can_spend(sender, amount.kopecks):
            assert not isinstance(outcome, DomainError), outcome
            self.model.available[sender] -= amount.kopecks
            self.model.available[receiver] = self.model.available.get(receiver, 0) + amount.kopecks
            self.model.reserved.setdefault(receiver, 0)
        else:
            assert isinstance(outcome, DomainError)

    @rule(user=users, service=services, order=orders, amount=amounts)
    def reserve(self, user: int, service: int, order: int, amount: Money) -> None:
        outcome = self.apply(reserve, Reserve(user, service, order, amount))
        known = self.model.orders.get(order)
        if known is not None:
            same = known[:3] == (user, service, amount.kopecks)
            assert isinstance(outcome, DomainError) != same, outcome
        elif self.model.can_spend(user, amount.kopecks):
            assert not isinstance(outcome, DomainError), outcome
            self.model.available[user] -= amount.kopecks
            self.model.reserved[user] += amount.kopecks
            self.model.orders[order] = (user, service, amount.kopecks, "reserved")
        else:
            assert isinstance(outcome, DomainError)

    def pick_order(self, data: st.DataObject) -> int:
        """Mostly an order the model knows, sometimes any id (unknown orders are refused)."""
        known = sorted(self.model.orders)
        pick_known: bool = data.draw(st.booleans(), label="known order")
        if known and pick_known:
            return data.draw(st.sampled_from(known), label="order")
        return data.draw(orders, label="order")

    @rule(data=st.data())
    def recognize(self, data: st.DataObject) -> None:
        order = self.pick_order(data)
        user, service, held, status = self.model.orders.get(order) or (1, 1, 1, "missing")
        amount = data.draw(
            st.one_of(
                st.sampled_from([held, held - 1, held + 1, 1]), st.integers(1, held + 1)
            ).filter(lambda a: a >= 1),
            label="amount",
        )
        outcome = self.apply(recognize, Recognize(order, user, service, Money(amount)))
        if status == "reserved" and amount <= held:
            assert not isinstance(outcome, DomainError), outcome
            self.model.reserved[user] -= held
            self.model.available[user] += held - amount
            self.model.orders[order] = (user, service, held, f"recognized:{amount}")
        elif status == f"recognized:{amount}":
            assert not isinstance(outcome, DomainError), outcome
        else:
            assert isinstance(outcome, DomainError)

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        order = self.pick_order(data)
        user, service, held, status = self.model.orders.get(order) or (1, 1, 1, "missing")
        outcome = self.apply(cancel, Cancel(order, user, service))
        if status == "reserved":
            assert not isinstance(outcome, DomainError), outcome
            self.model.reserved[user] -= held
            self.model.available[user] += held
            self.model.orders[order] = (user, service, held, "cancelled")
        elif status == "cancelled":
            assert not isinstance(outcome, DomainError), outcome
        else:
            assert isinstance(outcome, DomainError)

    @invariant()
    def ledger_holds_and_matches_the_model(self) -> None:
        ledger = self.loop.run_until_complete(self.adapter.view.snapshot())
        check_invariants(ledger)
        expected = {
            u: (self.model.available[u], self.model.reserved[u]) for u in self.model.available
        }
        assert ledger.accounts == expected


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
