"""Events of every movement, on both adapters: one per user a transaction touches and
one per limit change, numbered in commit order, each user's counted 1, 2, 3... with
balances that follow from the deltas; nothing for a refusal or a replay."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.cancel import Cancel, cancel
from application.deposit import Deposit, deposit
from application.events import StoredEvent
from application.get_balance import get_balance
from application.limits import SetLimits, set_limits
from application.move import Move, move
from application.recognize import Recognize, recognize
from application.reserve import Reserve, reserve
from application.transfer import Transfer, transfer
from application.withdraw import Withdraw, withdraw
from domain.errors import DomainError, InsufficientFunds, LegRefused
from domain.money import Money
from domain.movement import Leg
from tests.conftest import Adapter
from tests.helpers import every_event, rub, run


def summary(e: StoredEvent) -> tuple[Any, ...]:
    v = e.event
    return (v.type, v.user_id, v.user_seq, v.amount, v.available_delta, v.reserved_delta,
            v.available, v.reserved)  # fmt: skip


async def test_each_movement_gives_one_event_per_user_in_order(adapter: Adapter) -> None:
    await run(adapter, deposit, Deposit(1, rub("100"), metadata=(("k", "v"),)), key="d-1")
    await run(adapter, transfer, Transfer(1, 2, rub("10"), description="rent"))
    await run(adapter, reserve, Reserve(1, 5, 77, rub("30")))
    await run(adapter, recognize, Recognize(77, 1, 5, rub("20")))
    await run(adapter, reserve, Reserve(2, 5, 78, rub("4")))
    await run(adapter, cancel, Cancel(78, 2, 5))
    legs = (Leg(1, Money(-500)), Leg(2, Money(300)), Leg(3, Money(200)))
    await run(adapter, move, Move.of(legs))
    await run(adapter, set_limits, SetLimits(3, rub("50"), frozen=True))
    await run(adapter, withdraw, Withdraw(2, rub("1")))

    events = await every_event(adapter)
    assert [e.event_id for e in events] == list(range(1, 13))
    assert [summary(e) for e in events] == [
        ("deposit", 1, 1, 10000, 10000, 0, 10000, 0),
        ("transfer_out", 1, 2, 1000, -1000, 0, 9000, 0),
        ("transfer_in", 2, 1, 1000, 1000, 0, 1000, 0),
        ("reserve", 1, 3, 3000, -3000, 3000, 6000, 3000),
        ("recognize", 1, 4, 2000, 1000, -3000, 7000, 0),
        ("reserve", 2, 2, 400, -400, 400, 600, 400),
        ("cancel", 2, 3, 400, 400, -400, 1000, 0),
        ("movement_out", 1, 5, 500, -500, 0, 6500, 0),
        ("movement_in", 2, 4, 300, 300, 0, 1300, 0),
        ("movement_in", 3, 1, 200, 200, 0, 200, 0),
        ("limits_changed", 3, 2, 0, 0, 0, 200, 0),
        ("withdrawal", 2, 5, 100, -100, 0, 1200, 0),
    ]
    first, out, into = events[0], events[1], events[2]
    assert (first.event.idempotency_key, first.metadata) == ("d-1", (("k", "v"),))
    assert (out.counterparty_user_id, into.counterparty_user_id) == (2, 1)
    assert out.description == into.description == "rent"
    assert out.event.transaction_id == into.event.transaction_id
    assert (events[3].order_id, events[3].service_id) == (77, 5)
    limits = events[10].event
    assert (limits.credit_limit, limits.frozen, limits.transaction_id) == (5000, True, None)
    assert [e.event.user_seq for e in await every_event(adapter, 2)] == [1, 2, 3, 4, 5]


async def test_a_refusal_and_a_replay_write_no_event(adapter: Adapter) -> None:
    await run(adapter, deposit, Deposit(1, rub("5")), key="once")
    await run(adapter, deposit, Deposit(1, rub("5")), key="once")
    with contextlib.suppress(InsufficientFunds):
        await run(adapter, withdraw, Withdraw(1, rub("6")))
    await run(adapter, move, Move.of((Leg(1, Money(-100)), Leg(2, Money(100)))))
    with contextlib.suppress(LegRefused):
        await run(adapter, move, Move.of((Leg(1, Money(-1000)), Leg(2, Money(1000)))))
    events = await every_event(adapter)
    assert [(e.event.type, e.event.user_id) for e in events] == [
        ("deposit", 1),
        ("movement_out", 1),
        ("movement_in", 2),
    ]


OPS = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "withdraw", "transfer", "reserve", "recognize", "cancel",
                         "move", "limits"]),
        st.integers(1, 3),
        st.integers(1, 3),
        st.integers(1, 5000),
    ),
    max_size=25,
)  # fmt: skip


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
async def test_each_users_events_count_up_and_add_up_to_the_balance(
    adapter: Adapter, ops: list[tuple[str, int, int, int]]
) -> None:
    await adapter.reset()
    orders: list[tuple[int, int]] = []
    for n, (op, user, other, kopecks) in enumerate(ops, start=1):
        amount = Money(kopecks)
        command: Any = {
            "deposit": (deposit, Deposit(user, amount)),
            "withdraw": (withdraw, Withdraw(user, amount)),
            "transfer": (transfer, Transfer(user, other, amount) if other != user else None),
            "reserve": (reserve, Reserve(user, 1, n, amount)),
            "recognize": (
                recognize,
                Recognize(orders[0][0], orders[0][1], 1, Money(1)) if orders else None,
            ),
            "cancel": (cancel, Cancel(orders[-1][0], orders[-1][1], 1) if orders else None),
            "move": (
                move,
                Move.of((Leg(user, -amount), Leg(other, amount))) if other != user else None,
            ),
            "limits": (set_limits, SetLimits(user, amount, frozen=kopecks % 7 == 0)),
        }[op]
        if command[1] is None:
            continue
        with contextlib.suppress(DomainError):
            await run(adapter, *command)
            if op == "reserve":
                orders.append((n, user))
            elif op in ("recognize", "cancel"):
                orders.remove(orders[0] if op == "recognize" else orders[-1])
    events = await every_event(adapter)
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    for user in (1, 2, 3):
        mine = [e.event for e in events if e.event.user_id == user]
        assert [e.user_seq for e in mine] == list(range(1, len(mine) + 1))
        available = reserved = 0
        for e in mine:
            available += e.available_delta
            reserved += e.reserved_delta
            assert (e.available, e.reserved) == (available, reserved)
        if mine:
            balance = await get_balance(user, adapter.uow)
            assert (available, reserved) == (balance.available.kopecks, balance.reserved.kopecks)
