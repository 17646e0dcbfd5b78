"""The revenue report as CSV: `service name;total`, quoted by the csv module."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from application.ports import RevenueLine, RevenueReportWriter

HEADER = ("service name", "total")


class CsvRevenueReport(RevenueReportWriter):
    media_type = "text/csv"  # the HTTP layer adds "; charset=utf-8"
    extension = "csv"

    def render(self, lines: Iterable[RevenueLine]) -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
        writer.writerow(HEADER)
        yield self._take(buffer)
        for line in lines:
            writer.writerow((line.name, line.total.to_rubles()))
            yield self._take(buffer)

    @staticmethod
    def _take(buffer: io.StringIO) -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text
