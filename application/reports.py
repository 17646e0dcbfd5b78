"""Revenue for accounting: what was recognized per service in a period (UTC)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from application.errors import InvalidParameter
from application.ports import RevenueLine, RevenueReports
from domain.money import Money


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    since: datetime
    until: datetime
    label: str

    @classmethod
    def month(cls, year: int, month: int) -> ReportPeriod:
        if not 2000 <= year <= 9998:
            raise InvalidParameter("year", "must be between 2000 and 9998")
        if not 1 <= month <= 12:
            raise InvalidParameter("month", "must be between 1 and 12")
        since = datetime(year, month, 1, tzinfo=UTC)
        until = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        return cls(since, until, f"{year:04d}-{month:02d}")

    @classmethod
    def parse_month(cls, text: str) -> ReportPeriod:
        """'2022-11' -> November 2022."""
        year, dash, month = text.partition("-")
        if not (dash and len(year) == 4 and len(month) == 2 and (year + month).isdigit()):
            raise InvalidParameter("period", "must be YYYY-MM, e.g. 2022-11")
        return cls.month(int(year), int(month))

    @classmethod
    def between(cls, first: date, end: date) -> ReportPeriod:
        """Days from `first` up to, not including, `end`."""
        if first >= end:
            raise InvalidParameter("from", "must be before to")
        since = datetime(first.year, first.month, first.day, tzinfo=UTC)
        until = datetime(end.year, end.month, end.day, tzinfo=UTC)
        return cls(since, until, f"{first.isoformat()}_{end.isoformat()}")


def display_name(service_id: int, name: str | None) -> str:
    return name if name else f"service #{service_id}"


async def revenue_report(
    period: ReportPeriod, reports: Callable[[], RevenueReports]
) -> list[RevenueLine]:
    """One line per service that earned in the period, sorted by name, then id."""
    rows = await reports().totals(period.since, period.until)
    lines = [RevenueLine(sid, display_name(sid, name), Money(total)) for sid, name, total in rows]
    return sorted(lines, key=lambda line: (line.name, line.service_id))
