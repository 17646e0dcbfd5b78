"""Reservations that expire, on both adapters: at expires_at the money goes back,
once, as `expire` entries; recognizing or cancelling after that is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.cancel import Cancel, cancel
from application.deposit import Deposit, deposit
from application.recognize import Recognize, recognize
from application.reports import ReportPeriod, revenue_report
from application.reservations import get_reservation
from application.reserve import Reserve, reserve
from application.statement import build_query, statement
from domain.errors import InvalidExpiry, OrderAlreadyUsed, ReservationExpired
from domain.ledger import EntryKind
from domain.reservation import ReservationStatus
from tests.conftest import Adapter
from tests.helpers import rub, run
from tests.ledger_view import check_invariants


def in_an_hour() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


async def reserved_and_due(adapter: Adapter, order: int = 17) -> None:
    await run(adapter, deposit, Deposit(1, rub("100")))
    await run(adapter, reserve, Reserve(1, 5, order, rub("30"), expires_at=in_an_hour()))
    await adapter.make_due(order)


async def test_the_sweeper_gives_the_money_back_once(adapter: Adapter) -> None:
    await reserved_and_due(adapter)
    assert await adapter.sweeper().sweep() == 1
    assert await adapter.sweeper(worker=1).sweep() == 0  # nothing due any more
    found = await get_reservation(adapter.uow, adapter.movements.look_at, 17)
    assert found.reservation.status is ReservationStatus.EXPIRED
    assert found.balance.available == rub("100")
    ledger = await adapter.view.snapshot()
    assert ledger.accounts == {1: (10_000, 0)}
    expired = [e for e in ledger.entries if e.kind == "expire"]
    assert [(e.account, e.amount) for e in expired] == [("reserved", -3000), ("available", 3000)]
    check_invariants(ledger)
    lines = await statement(build_query(1, kinds=frozenset({EntryKind.EXPIRE})), adapter.uow)
    assert {line.description for line in lines.lines} == {"Reservation for order 17 expired"}
    month = ReportPeriod.month(datetime.now(UTC).year, datetime.now(UTC).month)
    assert await revenue_report(month, adapter.revenue) == []


@pytest.mark.parametrize(
    "touch",
    [
        lambda: (recognize, Recognize(17, 1, 5, rub("30"))),
        lambda: (cancel, Cancel(17, 1, 5)),
        lambda: (reserve, Reserve(1, 5, 17, rub("30"))),
    ],
    ids=["recognize", "cancel", "reserve again"],
)
async def test_a_request_after_expires_at_is_refused_and_expires_it(
    adapter: Adapter, touch: object
) -> None:
    await reserved_and_due(adapter)
    use_case, command = touch()  # type: ignore[operator]
    with pytest.raises(ReservationExpired):
        await run(adapter, use_case, command)
    ledger = await adapter.view.snapshot()
    assert ledger.accounts == {1: (10_000, 0)}  # the release was written all the same
    assert [r.status for r in ledger.reservations] == ["expired"]
    with pytest.raises(ReservationExpired):  # and it stays so
        await run(adapter, use_case, command)
    check_invariants(await adapter.view.snapshot())


async def test_a_read_sees_a_hold_run_out_as_the_next_batch_would(adapter: Adapter) -> None:
    """After a failover to a server whose clock is an hour behind the old primary's,
    the user's next batch is stamped an hour ahead of the clock (README, decision 10),
    and so finds a hold due in half an hour run out. A read of the reservation says
    so too, rather than "reserved" for a hold that the recognition after it would
    find expired."""
    await run(adapter, deposit, Deposit(1, rub("100")))
    half_an_hour = datetime.now(UTC) + timedelta(minutes=30)
    await run(adapter, reserve, Reserve(1, 5, 17, rub("30"), expires_at=half_an_hour))
    await adapter.written_ahead(timedelta(hours=1), 1)
    found = await get_reservation(adapter.uow, adapter.movements.look_at, 17)
    assert found.reservation.status is ReservationStatus.EXPIRED
    assert found.balance.available == rub("100")
    with pytest.raises(ReservationExpired):
        await run(adapter, recognize, Recognize(17, 1, 5, rub("30")))
    check_invariants(await adapter.view.snapshot())


async def test_another_user_touching_a_due_order_is_refused_as_before(adapter: Adapter) -> None:
    await reserved_and_due(adapter)
    await run(adapter, deposit, Deposit(2, rub("100")))
    with pytest.raises(OrderAlreadyUsed):
        await run(adapter, reserve, Reserve(2, 5, 17, rub("30")))
    assert await adapter.sweeper().sweep() == 1
    check_invariants(await adapter.view.snapshot())


async def test_a_reservation_recognized_before_expiry_stays_recognized(adapter: Adapter) -> None:
    await run(adapter, deposit, Deposit(1, rub("100")))
    await run(adapter, reserve, Reserve(1, 5, 17, rub("30"), expires_at=in_an_hour()))
    await run(adapter, recognize, Recognize(17, 1, 5, rub("30")))
    await adapter.make_due(17)  # no longer open: nothing is due
    assert await adapter.sweeper().sweep() == 0
    ledger = await adapter.view.snapshot()
    assert [r.status for r in ledger.reservations] == ["recognized"]
    assert ledger.accounts == {1: (7000, 0)}


@pytest.mark.parametrize(
    ("expires_at", "reason"),
    [
        (lambda: datetime.now(UTC) - timedelta(seconds=1), "must be in the future"),
        (lambda: datetime.now(UTC) + timedelta(days=91), "must be at most 90 days ahead"),
    ],
    ids=["past", "91 days"],
)
async def test_an_expiry_out_of_bounds_is_refused_and_writes_nothing(
    adapter: Adapter, expires_at: object, reason: str
) -> None:
    await run(adapter, deposit, Deposit(1, rub("100")))
    before = await adapter.view.snapshot()
    command = Reserve(1, 5, 17, rub("30"), expires_at=expires_at())  # type: ignore[operator]
    with pytest.raises(InvalidExpiry, match=reason):
        await run(adapter, reserve, command)
    assert await adapter.view.snapshot() == before
