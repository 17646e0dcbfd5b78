"""Service catalogue and revenue totals over the in-memory journal."""

from __future__ import annotations

from datetime import datetime

from adapters.memory.statements import JournalLines
from application.ports import RevenueReports, ServiceCatalogue
from domain.ledger import AccountKind


class InMemoryServiceCatalogue(ServiceCatalogue):
    def __init__(self, committed: dict[int, str]) -> None:
        self._committed = committed
        self.changed: dict[int, str] = {}

    async def name(self, service_id: int, name: str) -> None:
        self.changed[service_id] = name

    async def all(self) -> list[tuple[int, str]]:
        return sorted((self._committed | self.changed).items())


class InMemoryRevenueReports(RevenueReports):
    def __init__(self, transactions: JournalLines, names: dict[int, str]) -> None:
        self._transactions = transactions
        self._names = names

    async def totals(self, since: datetime, until: datetime) -> list[tuple[int, str | None, int]]:
        totals: dict[int, int] = {}
        for _, transaction, created_at, _ in self._transactions:
            if not since <= created_at < until:
                continue
            for posting in transaction.postings:
                if posting.account.kind is AccountKind.REVENUE:
                    sid = posting.account.service_id
                    assert sid is not None
                    totals[sid] = totals.get(sid, 0) + posting.amount.kopecks
        return [(sid, self._names.get(sid), total) for sid, total in totals.items()]
