"""What real ledgers let you say, on both adapters: credit limits that count holds, a
freeze that stops debits only, multi-leg movements, and metadata on movements."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from application.cancel import Cancel, cancel
from application.deposit import Deposit, deposit
from application.errors import IdempotencyKeyReused
from application.get_balance import get_balance
from application.limits import SetLimits, get_limits, set_limits
from application.move import Move, move
from application.recognize import Recognize, recognize
from application.reservations import get_reservation
from application.reserve import Reserve, reserve
from application.statement import build_query, statement
from application.transfer import Transfer, transfer
from application.withdraw import Withdraw, withdraw
from domain.errors import (
    AccountFrozen,
    BalanceLimit,
    InsufficientFunds,
    InvalidMovement,
    LegRefused,
    UserNotFound,
)
from domain.ledger import EntryKind
from domain.money import MAX_BALANCE_KOPECKS, Money
from domain.movement import Leg
from tests.conftest import Adapter
from tests.helpers import keep, rub, run, unpickled
from tests.ledger_view import check_invariants


async def available(adapter: Adapter, user_id: int) -> str:
    return (await get_balance(user_id, adapter.uow)).available.to_rubles()


async def refused(adapter: Adapter, call: object, error: type[Exception]) -> Exception:
    before = await adapter.view.snapshot()
    with pytest.raises(error) as raised:
        await call  # type: ignore[misc]
    assert await adapter.view.snapshot() == before, "a refusal wrote something"
    return raised.value


def legs(*pairs: tuple[int, str]) -> list[Leg]:
    return [Leg(user, Money.from_rubles(amount)) for user, amount in pairs]


# -- limits ----------------------------------------------------------------------------


async def test_limits_default_to_none_and_a_limit_on_a_new_user_opens_its_account(
    adapter: Adapter,
) -> None:
    await run(adapter, deposit, Deposit(1, rub("5")))
    found = await get_limits(adapter.uow, 1)
    assert (found.credit_limit, found.frozen) == (Money(0), False)
    with pytest.raises(UserNotFound):
        await get_limits(adapter.uow, 2)
    changed = await run(adapter, set_limits, SetLimits(2, rub("100"), False))
    assert changed.balance.available == Money(0)
    again = await get_limits(adapter.uow, 2)
    assert (again.credit_limit, again.updated_at) == (rub("100"), changed.updated_at)
    assert await available(adapter, 2) == "0.00"
    check_invariants(await adapter.view.snapshot())


async def test_a_credit_limit_lets_available_go_below_zero_and_no_further(
    adapter: Adapter,
) -> None:
    await run(adapter, deposit, Deposit(1, rub("10")))
    await run(adapter, set_limits, SetLimits(1, rub("100"), False))
    done = await run(adapter, withdraw, Withdraw(1, rub("60")))
    assert done.balance.available == Money(-5000)
    error = await refused(
        adapter, run(adapter, withdraw, Withdraw(1, rub("50.01"))), InsufficientFunds
    )
    assert (error.available, error.credit_limit, error.requested) == (  # type: ignore[attr-defined]
        "-50.00",
        "100.00",
        "50.01",
    )
    await run(adapter, withdraw, Withdraw(1, rub("50")))  # exactly to the limit
    assert await available(adapter, 1) == "-100.00"
    check_invariants(await adapter.view.snapshot())


async def test_held_money_is_not_available_so_holds_count_against_the_limit(
    adapter: Adapter,
) -> None:
    await run(adapter, deposit, Deposit(1, rub("10")))
    await run(adapter, set_limits, SetLimits(1, rub("20"), False))
    await run(adapter, reserve, Reserve(1, 5, 70, rub("25")))  # available 10 -> -15
    await refused(adapter, run(adapter, reserve, Reserve(1, 5, 71, rub("5.01"))), InsufficientFunds)
    await refused(adapter, run(adapter, transfer, Transfer(1, 2, rub("5.01"))), InsufficientFunds)
    await run(adapter, cancel, Cancel(70, 1, 5))  # the hold back: available 10 again
    await run(adapter, transfer, Transfer(1, 2, rub("30")))
    assert await available(adapter, 1) == "-20.00"
    check_invariants(await adapter.view.snapshot())


async def test_a_limit_lowered_below_the_debt_stands_and_refuses_further_debits(
    adapter: Adapter,
) -> None:
    await run(adapter, set_limits, SetLimits(1, rub("100"), False))
    await run(adapter, withdraw, Withdraw(1, rub("80")))
    await run(adapter, set_limits, SetLimits(1, rub("50"), False))  # allowed: 80 owed
    await refused(adapter, run(adapter, withdraw, Withdraw(1, rub("0.01"))), InsufficientFunds)
    await run(adapter, deposit, Deposit(1, rub("40")))  # -40: within the limit again
    await run(adapter, withdraw, Withdraw(1, rub("10")))
    assert await available(adapter, 1) == "-50.00"
    check_invariants(await adapter.view.snapshot())


async def test_frozen_refuses_every_debit_and_lets_credits_and_earlier_holds_close(
    adapter: Adapter,
) -> None:
    await run(adapter, deposit, Deposit(1, rub("100")))
    await run(adapter, deposit, Deposit(2, rub("100")))
    await run(adapter, reserve, Reserve(1, 5, 80, rub("10")))
    await run(adapter, reserve, Reserve(1, 5, 81, rub("10")))
    await run(adapter, set_limits, SetLimits(1, rub("500"), True))
    for call in (
        run(adapter, withdraw, Withdraw(1, rub("1"))),
        run(adapter, transfer, Transfer(1, 2, rub("1"))),
        run(adapter, reserve, Reserve(1, 5, 82, rub("1"))),
    ):
        await refused(adapter, call, AccountFrozen)
    leg = await refused(adapter, run(adapter, move, Move.of(legs((1, "-1"), (2, "1")))), LegRefused)
    assert isinstance(leg.refusal, AccountFrozen)  # type: ignore[attr-defined]
    await run(adapter, deposit, Deposit(1, rub("1")))
    await run(adapter, transfer, Transfer(2, 1, rub("1")))
    await run(adapter, recognize, Recognize(80, 1, 5, rub("10")))
    await run(adapter, cancel, Cancel(81, 1, 5))
    assert await available(adapter, 1) == "92.00"
    await run(adapter, set_limits, SetLimits(1, rub("500"), False))
    await run(adapter, withdraw, Withdraw(1, rub("1")))
    check_invariants(await adapter.view.snapshot())


async def test_no_credit_brings_an_account_past_the_most_one_holds(adapter: Adapter) -> None:
    """Past 10^15 rubles a credit is refused (a 64-bit column of kopecks ends near
    9.2e16), before anything is written; holds and their return are never refused."""
    largest = "10000000000000"
    await asyncio.gather(*(run(adapter, deposit, Deposit(1, rub(largest))) for _ in range(100)))
    await run(adapter, deposit, Deposit(2, rub("5")))
    await run(adapter, reserve, Reserve(1, 5, 90, rub("1")))
    for call in (
        run(adapter, deposit, Deposit(1, rub("0.01"))),
        run(adapter, transfer, Transfer(2, 1, rub("0.01"))),
    ):
        await refused(adapter, call, BalanceLimit)
    leg = await refused(adapter, run(adapter, move, Move.of(legs((2, "-1"), (1, "1")))), LegRefused)
    assert (leg.index, type(leg.refusal)) == (1, BalanceLimit)  # type: ignore[attr-defined]
    await run(adapter, cancel, Cancel(90, 1, 5))
    await run(adapter, withdraw, Withdraw(1, rub("1")))
    await run(adapter, transfer, Transfer(2, 1, rub("1")))  # back at the most, exactly
    assert (await get_balance(1, adapter.uow)).total == Money(MAX_BALANCE_KOPECKS)
    check_invariants(await adapter.view.snapshot())


# -- multi-leg movements ----------------------------------------------------------------


async def test_a_movement_is_one_transaction_of_every_leg(adapter: Adapter) -> None:
    await run(adapter, deposit, Deposit(1, rub("150")))
    await run(adapter, deposit, Deposit(2, rub("40")))
    cmd = Move.of(legs((1, "-100"), (2, "95"), (3, "5")), "order 77: payout and fee")
    result = await run(adapter, move, cmd)
    assert [(leg.user_id, leg.balance.available.to_rubles()) for leg in result.legs] == [
        (1, "50.00"),
        (2, "135.00"),
        (3, "5.00"),  # a positive leg opens the account
    ]
    ledger = await adapter.view.snapshot()
    moved = [e for e in ledger.entries if e.transaction_id == result.transaction_id]
    assert sorted((e.user_id, e.kind, e.amount) for e in moved) == [
        (1, "movement_out", -10000),
        (2, "movement_in", 9500),
        (3, "movement_in", 500),
    ]
    page = await statement(build_query(2, kinds=frozenset({EntryKind.MOVEMENT_IN})), adapter.uow)
    assert [line.description for line in page.lines] == [
        "Received in a movement: order 77: payout and fee"
    ]
    check_invariants(ledger)


async def test_a_refused_leg_refuses_the_movement_whole(adapter: Adapter) -> None:
    await run(adapter, deposit, Deposit(1, rub("10")))
    await run(adapter, deposit, Deposit(2, rub("10")))
    short = await refused(
        adapter, run(adapter, move, Move.of(legs((1, "-5"), (2, "-11"), (3, "16")))), LegRefused
    )
    assert short.index == 1  # type: ignore[attr-defined]
    assert isinstance(short.refusal, InsufficientFunds)  # type: ignore[attr-defined]
    unknown = await refused(
        adapter, run(adapter, move, Move.of(legs((9, "-1"), (1, "1")))), LegRefused
    )
    assert isinstance(unknown.refusal, UserNotFound)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("pairs", "field"),
    [
        ([(1, "-1"), (2, "0.99")], "legs"),  # sums to -0.01
        ([(1, "-1"), (1, "1")], "legs[1].user_id"),
        ([(1, "0"), (2, "0")], "legs[0].amount"),
        ([(1, "-1")], "legs"),
        ([(u, "1") for u in range(1, 101)] + [(101, "-100")], "legs"),  # 101 legs
    ],
)
def test_a_movement_that_cannot_be_one_transaction_is_refused_as_written(
    pairs: list[tuple[int, str]], field: str
) -> None:
    with pytest.raises(InvalidMovement) as refused_:
        Move.of(legs(*pairs))
    assert refused_.value.field == field


# -- metadata -----------------------------------------------------------------------------


async def test_metadata_is_kept_with_the_transaction_and_found_by_the_statement(
    adapter: Adapter,
) -> None:
    tags = (("channel", "app"), ("order", "77"))
    await run(adapter, deposit, Deposit(1, rub("100"), metadata=tags))
    await run(adapter, deposit, Deposit(1, rub("1"), metadata=(("order", "78"),)))
    await run(adapter, reserve, Reserve(1, 5, 77, rub("10"), metadata=(("order", "77"),)))
    await run(adapter, move, Move.of(legs((1, "-3"), (2, "3")), metadata=tags))
    found = await statement(build_query(1, metadata=(("order", "77"),)), adapter.uow)
    assert [(line.kind.value, line.metadata) for line in found.lines] == [
        ("movement_out", tags),
        ("reserve", (("order", "77"),)),
        ("reserve", (("order", "77"),)),
        ("deposit", tags),
    ]
    both = await statement(build_query(1, metadata=tags), adapter.uow)
    assert [line.kind.value for line in both.lines] == ["movement_out", "deposit"]
    other = await statement(build_query(2, metadata=(("order", "77"),)), adapter.uow)
    assert [line.kind.value for line in other.lines] == ["movement_in"]
    nothing = await statement(build_query(1, metadata=(("order", "79"),)), adapter.uow)
    assert nothing.lines == []


async def test_a_reservation_read_back_carries_the_metadata_it_was_made_with(
    adapter: Adapter,
) -> None:
    await run(adapter, deposit, Deposit(1, rub("100")))
    tags = (("cart", "c-9"), ("order", "77"))
    await run(adapter, reserve, Reserve(1, 5, 77, rub("10"), metadata=tags))
    await run(adapter, reserve, Reserve(1, 5, 78, rub("10")))
    # Recognizing with pairs of its own: those stay with the recognition's transaction.
    await run(adapter, recognize, Recognize(77, 1, 5, rub("10"), metadata=(("invoice", "1"),)))
    tagged = await get_reservation(adapter.uow, adapter.movements.look_at, 77)
    plain = await get_reservation(adapter.uow, adapter.movements.look_at, 78)
    assert (tagged.metadata, tagged.reservation.metadata) == (tags, tags)
    assert (plain.metadata, plain.reservation.metadata) == ((), ())


async def test_metadata_walks_by_cursor_like_any_filter(adapter: Adapter) -> None:
    tag = (("batch", "payout-7"),)
    for i in range(7):
        await run(adapter, deposit, Deposit(1, rub(f"{i + 1}"), metadata=tag if i % 2 else ()))
    seen, cursor = [], None
    while True:
        query = build_query(1, limit=2, cursor=cursor, metadata=None if cursor else tag)
        page = await statement(query, adapter.uow)
        seen += [line.amount.to_rubles() for line in page.lines]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["6.00", "4.00", "2.00"]


async def test_metadata_is_part_of_what_makes_a_keyed_request_the_same(adapter: Adapter) -> None:
    first = await adapter.movements.execute(
        deposit, Deposit(1, rub("5"), metadata=(("order", "1"),)), keep, "k-meta"
    )
    again = await adapter.movements.execute(
        deposit, Deposit(1, rub("5"), metadata=(("order", "1"),)), keep, "k-meta"
    )
    assert unpickled(again) == unpickled(first)
    with pytest.raises(IdempotencyKeyReused):
        await adapter.movements.execute(
            deposit, Deposit(1, rub("5"), metadata=(("order", "2"),)), keep, "k-meta"
        )
    with pytest.raises(IdempotencyKeyReused):
        await adapter.movements.execute(deposit, Deposit(1, rub("5")), keep, "k-meta")
    assert await available(adapter, 1) == "5.00"


async def test_an_expired_hold_of_a_frozen_account_comes_back(adapter: Adapter) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    await run(adapter, deposit, Deposit(1, rub("10")))
    await run(adapter, reserve, Reserve(1, 5, 90, rub("4"), expires_at=later))
    await run(adapter, set_limits, SetLimits(1, Money(0), True))
    await adapter.make_due(90)
    assert await adapter.sweeper().sweep() == 1
    assert await available(adapter, 1) == "10.00"
    check_invariants(await adapter.view.snapshot())
