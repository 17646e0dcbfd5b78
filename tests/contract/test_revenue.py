"""Revenue reports on both adapters: exactly what was recognized, per service, per period."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.csv.revenue import CsvRevenueReport
from application.deposit import Deposit, deposit
from application.errors import InvalidParameter
from application.recognize import Recognize, recognize
from application.reports import ReportPeriod, revenue_report
from application.reserve import Reserve, reserve
from application.services import NameService, list_services, name_service
from domain.money import Money
from tests.conftest import Adapter
from tests.helpers import run

ALL_TIME = ReportPeriod(datetime(2000, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC), "all")


recognitions = st.lists(
    st.tuples(st.integers(1, 4), st.integers(1, 5000), st.integers(0, 5000)), max_size=15
)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(orders=recognitions)
async def test_report_equals_recognized_entries(
    adapter: Adapter, orders: list[tuple[int, int, int]]
) -> None:
    await adapter.reset()
    await run(adapter, deposit, Deposit(1, Money(10**9)))
    for order, (service, held, rest) in enumerate(orders, start=1):
        await run(adapter, reserve, Reserve(1, service, order, Money(held + rest)))
        await run(adapter, recognize, Recognize(order, 1, service, Money(held)))
    await run(adapter, reserve, Reserve(1, 9, 10_000, Money(7)))  # held, never recognized

    lines = await revenue_report(ALL_TIME, adapter.revenue)

    expected: dict[int, int] = {}
    for entry in (await adapter.view.snapshot()).entries:
        if entry.account == "revenue":
            assert entry.service_id is not None
            expected[entry.service_id] = expected.get(entry.service_id, 0) + entry.amount
    assert {line.service_id: line.total.kopecks for line in lines} == expected
    want: dict[int, int] = {}
    for service, held, _ in orders:
        want[service] = want.get(service, 0) + held
    assert expected == want
    assert [line.name for line in lines] == sorted(line.name for line in lines)


async def test_period_bounds_include_from_and_exclude_to(adapter: Adapter) -> None:
    await run(adapter, deposit, Deposit(1, Money(1000)))
    await run(adapter, reserve, Reserve(1, 5, 1, Money(300)))
    await run(adapter, recognize, Recognize(1, 1, 5, Money(300)))
    stamp = await recognized_at(adapter)
    reports = adapter.revenue
    inside = ReportPeriod(stamp, stamp + timedelta(microseconds=1), "x")
    before = ReportPeriod(stamp - timedelta(days=1), stamp, "x")
    assert [line.total for line in await revenue_report(inside, reports)] == [Money(300)]
    assert await revenue_report(before, reports) == []


async def recognized_at(adapter: Adapter) -> datetime:
    from application.statement import build_query, statement
    from domain.ledger import EntryKind

    page = await statement(build_query(1, kinds=frozenset({EntryKind.RECOGNIZE})), adapter.uow)
    return page.lines[0].created_at


async def test_names_and_csv_round_trip(adapter: Adapter) -> None:
    names = {1: 'Delivery; "express"', 2: "Реклама\nв ленте", 3: "Zeta"}
    for service_id, name in names.items():
        await name_service(NameService(service_id, name), adapter.uow)
    await name_service(NameService(3, "Alpha"), adapter.uow)  # renamed
    assert [s.name for s in await list_services(adapter.uow)] == [names[1], names[2], "Alpha"]
    await run(adapter, deposit, Deposit(1, Money(10**6)))
    for order, (service, kopecks) in enumerate(
        [(1, 150), (2, 99_999), (3, 1), (4, 500), (1, 50)], 1
    ):
        await run(adapter, reserve, Reserve(1, service, order, Money(kopecks)))
        await run(adapter, recognize, Recognize(order, 1, service, Money(kopecks)))
    lines = await revenue_report(ALL_TIME, adapter.revenue)
    text = "".join(CsvRevenueReport().render(lines))
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert rows == [
        ["service name", "total"],
        ["Alpha", "0.01"],
        ['Delivery; "express"', "2.00"],
        ["service #4", "5.00"],
        ["Реклама\nв ленте", "999.99"],
    ]


def test_months_are_utc_and_roll_over_the_year() -> None:
    december = ReportPeriod.month(2022, 12)
    assert (december.since, december.until) == (
        datetime(2022, 12, 1, tzinfo=UTC),
        datetime(2023, 1, 1, tzinfo=UTC),
    )
    assert ReportPeriod.parse_month("2022-02").until == datetime(2022, 3, 1, tzinfo=UTC)
    assert ReportPeriod.between(date(2022, 1, 1), date(2022, 1, 2)).label == "2022-01-01_2022-01-02"
    for bad in ["2022-13", "2022-00", "22-11", "2022/11", "abcd-ef", "1999-12", "2022-1"]:
        with pytest.raises(InvalidParameter):
            ReportPeriod.parse_month(bad)
    with pytest.raises(InvalidParameter):
        ReportPeriod.between(date(2022, 1, 2), date(2022, 1, 2))
