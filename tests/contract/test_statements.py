"""Statements on both adapters: complete, ordered, stable under inserts, explained."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.cancel import Cancel, cancel
from application.deposit import Deposit, deposit
from application.get_balance import get_balance
from application.recognize import Recognize, recognize
from application.reserve import Reserve, reserve
from application.statement import StatementLine, build_query, statement
from application.statement_query import StatementSort
from application.transfer import Transfer, transfer
from application.withdraw import Withdraw, withdraw
from domain.errors import DomainError
from domain.ledger import EntryKind
from domain.money import Money
from tests.conftest import Adapter
from tests.helpers import rub, run

USER = 1
operations = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "withdraw", "transfer_out", "transfer_in", "reserve", "close"]),
        st.sampled_from([100, 250, 100, 999, 5000]),  # repeats make amount ties
    ),
    max_size=25,
)


async def build_ledger(adapter: Adapter, ops: list[tuple[str, int]]) -> None:
    await adapter.reset()
    await run(adapter, deposit, Deposit(USER, Money(10_000)))
    await run(adapter, deposit, Deposit(2, Money(10_000)))
    for order, (op, kopecks) in enumerate(ops, start=1):
        amount = Money(kopecks)
        command: Any = {
            "deposit": (deposit, Deposit(USER, amount)),
            "withdraw": (withdraw, Withdraw(USER, amount)),
            "transfer_out": (transfer, Transfer(USER, 2, amount)),
            "transfer_in": (transfer, Transfer(2, USER, amount)),
            "reserve": (reserve, Reserve(USER, 1, order, amount)),
            "close": (
                (recognize, Recognize(order - 1, USER, 1, Money(max(1, kopecks // 3))))
                if kopecks % 2
                else (cancel, Cancel(order - 1, USER, 1))
            ),
        }[op]
        with contextlib.suppress(DomainError):
            await run(adapter, *command)


async def read_all(adapter: Adapter, **params: Any) -> list[StatementLine]:
    page = await statement(build_query(USER, limit=500, **params), adapter.uow)
    assert page.next_cursor is None
    return page.lines


async def walk(adapter: Adapter, limit: int, **params: Any) -> list[StatementLine]:
    lines: list[StatementLine] = []
    cursor = None
    while True:
        query = build_query(USER, limit=limit, cursor=cursor, **({} if cursor else params))
        page = await statement(query, adapter.uow)
        assert len(page.lines) <= limit
        lines += page.lines
        assert len(lines) <= 1000, "the walk does not end: a cursor repeats entries"
        if page.next_cursor is None:
            return lines
        cursor = page.next_cursor


def key(sort: StatementSort, line: StatementLine) -> tuple[Any, int]:
    size = abs(line.amount.kopecks) if sort is StatementSort.AMOUNT else line.created_at
    return size, line.entry_id


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=operations,
    limit=st.integers(1, 6),
    sort=st.sampled_from(StatementSort),
    descending=st.booleans(),
)
async def test_every_walk_returns_every_entry_once_in_order(
    adapter: Adapter, ops: list[tuple[str, int]], limit: int, sort: StatementSort, descending: bool
) -> None:
    await build_ledger(adapter, ops)
    everything = await read_all(adapter, sort=sort, descending=descending)
    keys = [key(sort, line) for line in everything]
    assert keys == sorted(keys, reverse=descending)
    ledger = await adapter.view.snapshot()
    assert len(everything) == sum(1 for e in ledger.entries if e.user_id == USER)

    assert await walk(adapter, limit, sort=sort, descending=descending) == everything

    paged: list[StatementLine] = []
    number = 1
    while True:
        page = await statement(
            build_query(USER, limit=limit, page=number, sort=sort, descending=descending),
            adapter.uow,
        )
        assert page.total == len(everything)
        if not page.lines:
            break
        paged += page.lines
        number += 1
    assert paged == everything


async def test_filters_by_kind_and_period(adapter: Adapter) -> None:
    await build_ledger(adapter, [("deposit", 100), ("withdraw", 250), ("reserve", 999)])
    everything = await read_all(adapter, descending=False)
    deposits = await read_all(adapter, kinds=frozenset({EntryKind.DEPOSIT}))
    assert {line.kind for line in deposits} == {EntryKind.DEPOSIT}
    assert len(deposits) == sum(1 for line in everything if line.kind is EntryKind.DEPOSIT)
    middle = everything[1].created_at
    since = await read_all(adapter, since=middle, descending=False)
    assert since == [line for line in everything if line.created_at >= middle]
    until = await read_all(adapter, until=middle, descending=False)
    assert until == [line for line in everything if line.created_at < middle]


async def test_inserts_between_pages_never_skip_or_repeat_older_entries(adapter: Adapter) -> None:
    await build_ledger(adapter, [("deposit", 100)] * 6)
    for descending in (True, False):
        before = await read_all(adapter, descending=descending)
        seen: list[StatementLine] = []
        cursor = None
        while True:
            params: dict[str, Any] = {} if cursor else {"descending": descending}
            page = await statement(build_query(USER, limit=2, cursor=cursor, **params), adapter.uow)
            seen += page.lines
            assert len(seen) <= 100, "the walk does not end: a cursor repeats entries"
            await run(adapter, deposit, Deposit(USER, rub("0.01")))  # lands between page reads
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        old_ids = {line.entry_id for line in before}
        assert [line for line in seen if line.entry_id in old_ids] == before
        assert len({line.entry_id for line in seen}) == len(seen)


async def test_every_kind_is_explained(adapter: Adapter) -> None:
    await run(adapter, deposit, Deposit(USER, rub("100"), "card"))
    await run(adapter, withdraw, Withdraw(USER, rub("1")))
    await run(adapter, transfer, Transfer(USER, 42, rub("2"), "rent"))
    await run(adapter, transfer, Transfer(42, USER, rub("1")))
    await run(adapter, reserve, Reserve(USER, 5, 17, rub("10")))
    await run(adapter, recognize, Recognize(17, USER, 5, rub("6")))
    await run(adapter, reserve, Reserve(USER, 5, 18, rub("3")))
    await run(adapter, cancel, Cancel(18, USER, 5))
    described = {(line.kind.value, line.account.value): line for line in await read_all(adapter)}
    assert {k: line.description for k, line in described.items()} == {
        ("deposit", "available"): "Deposit: card",
        ("withdrawal", "available"): "Withdrawal",
        ("transfer_out", "available"): "Transfer to user 42: rent",
        ("transfer_in", "available"): "Transfer from user 42",
        ("reserve", "available"): "Reserved for order 17, service #5",
        ("reserve", "reserved"): "Reserved for order 17, service #5",
        ("recognize", "reserved"): "Revenue recognized for order 17, service #5",
        ("release", "reserved"): "Unused rest of order 17 returned",
        ("release", "available"): "Unused rest of order 17 returned",
        ("cancel", "reserved"): "Reservation for order 18 cancelled",
        ("cancel", "available"): "Reservation for order 18 cancelled",
    }
    assert described[("transfer_in", "available")].counterparty_user_id == 42
    assert described[("transfer_out", "available")].amount == -rub("2")


async def as_of_every_entry_is_the_replay(
    adapter: Adapter, user: int, lines: list[StatementLine]
) -> None:
    """The balance as of each entry's time is the last balance_after of each account
    among the entries at or before that time."""
    for line in lines:
        replayed = {"available": 0, "reserved": 0}
        for earlier in lines:
            if earlier.created_at <= line.created_at:
                replayed[earlier.account.value] = earlier.balance_after.kopecks
        balance = await get_balance(user, adapter.uow, as_of=line.created_at)
        assert (balance.available.kopecks, balance.reserved.kopecks) == (
            replayed["available"],
            replayed["reserved"],
        )


async def test_balance_as_of_every_entry_equals_the_replay(adapter: Adapter) -> None:
    await build_ledger(
        adapter, [("deposit", 100), ("reserve", 250), ("close", 999), ("transfer_out", 100)]
    )
    lines = await read_all(adapter, descending=False)
    await as_of_every_entry_is_the_replay(adapter, USER, lines)
    before = await get_balance(USER, adapter.uow, as_of=lines[0].created_at - timedelta(1))
    assert (before.available, before.reserved) == (Money(0), Money(0))
    now = await get_balance(USER, adapter.uow)
    latest = await get_balance(USER, adapter.uow, as_of=lines[-1].created_at + timedelta(1))
    assert latest == now


async def test_entries_keep_their_order_in_time_after_a_clock_that_was_ahead(
    adapter: Adapter,
) -> None:
    """A failover to a server whose clock is behind the old primary's, or a clock
    stepped back: a batch's time is never before the times its users' rows were last
    written, and their rows are written no earlier than it, so a user's entries sorted
    by time are still sorted by id, and a balance as of any instant is one the user had.
    Here user 2's deposit was stamped an hour ahead: the transfer from them is stamped
    no earlier, so USER's entry of it is an hour ahead too, and USER's withdrawal alone
    afterwards no earlier than that."""
    await build_ledger(adapter, [("deposit", 100), ("reserve", 250)])
    await adapter.written_ahead(timedelta(hours=1), 2)
    await run(adapter, transfer, Transfer(2, USER, Money(5)))
    await run(adapter, withdraw, Withdraw(USER, Money(100)))
    for user, entries in ((USER, 6), (2, 2)):
        page = await statement(build_query(user, limit=500, descending=False), adapter.uow)
        lines = page.lines  # by time
        assert len(lines) == entries
        assert [line.entry_id for line in lines] == sorted(line.entry_id for line in lines)
        await as_of_every_entry_is_the_replay(adapter, user, lines)


async def test_the_deepest_page_is_empty_not_an_error(adapter: Adapter) -> None:
    """Page 10^9 of 500 lines starts past 2^31 entries: the offset is a bigint."""
    await run(adapter, deposit, Deposit(1, rub("1")))
    deepest = build_query(1, page=10**9, limit=500)
    page = await statement(deepest, adapter.uow)
    assert page.lines == []
    assert page.total == 1


TAGS = [(), (("t", "a"),), (("t", "b"),), (("t", "a"), ("u", "x")), (("t", "b"), ("u", "x"))]
tagged_operations = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "withdraw", "transfer_out", "transfer_in", "reserve"]),
        st.sampled_from([100, 250, 999]),
        st.sampled_from(TAGS),
    ),
    max_size=20,
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=tagged_operations,
    limit=st.integers(1, 5),
    wanted=st.sampled_from([*TAGS[1:], (("u", "x"),)]),
    filters=st.tuples(
        st.sampled_from([None, frozenset({EntryKind.RESERVE}), frozenset({EntryKind.DEPOSIT})]),
        st.booleans(),
    ),
)
async def test_a_walk_filtered_on_metadata_returns_every_tagged_entry_once_in_order(
    adapter: Adapter,
    ops: list[tuple[str, int, Any]],
    limit: int,
    wanted: Any,
    filters: tuple[frozenset[EntryKind] | None, bool],
) -> None:
    kinds, descending = filters
    await adapter.reset()
    await run(adapter, deposit, Deposit(USER, Money(10_000)))
    await run(adapter, deposit, Deposit(2, Money(10_000)))
    for order, (op, kopecks, tags) in enumerate(ops, start=1):
        amount = Money(kopecks)
        command: Any = {
            "deposit": (deposit, Deposit(USER, amount, metadata=tags)),
            "withdraw": (withdraw, Withdraw(USER, amount, metadata=tags)),
            "transfer_out": (transfer, Transfer(USER, 2, amount, metadata=tags)),
            "transfer_in": (transfer, Transfer(2, USER, amount, metadata=tags)),
            "reserve": (reserve, Reserve(USER, 1, order, amount, metadata=tags)),
        }[op]
        with contextlib.suppress(DomainError):
            await run(adapter, *command)
    everything = await read_all(adapter, descending=descending)
    expected = [
        line
        for line in everything
        if set(wanted) <= set(line.metadata) and (not kinds or line.kind in kinds)
    ]
    params = {"metadata": wanted, "descending": descending, "kinds": kinds}
    assert await walk(adapter, limit, **params) == expected
