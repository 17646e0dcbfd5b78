"""Statements over the in-memory journal: the same answers as the PostgreSQL queries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from application.ports import StatementRow, Statements
from application.statement_query import StatementQuery, StatementSort
from domain.ledger import JournalTransaction

JournalLines = list[tuple[int, JournalTransaction, datetime, str | None]]
"""The committed journal: (transaction id, transaction, time, the caller's name)."""


class InMemoryStatements(Statements):
    def __init__(self, transactions: JournalLines, names: dict[int, str]) -> None:
        self._transactions = transactions  # the committed journal, read only
        self._names = names

    def _rows(self, user_id: int) -> Iterator[StatementRow]:
        entry_id = 0
        for transaction_id, tx, created_at, caller in self._transactions:
            for posting in tx.postings:
                entry_id += 1
                if posting.account.user_id != user_id or posting.balance_after is None:
                    continue
                yield StatementRow(
                    entry_id,
                    transaction_id,
                    posting.kind.value,
                    posting.account.kind.value,
                    posting.amount.kopecks,
                    posting.balance_after.kopecks,
                    created_at,
                    tx.description,
                    tx.service_id,
                    self._names.get(tx.service_id) if tx.service_id else None,
                    tx.order_id,
                    tx.user_id,
                    tx.counterparty_user_id,
                    tx.metadata,
                    caller,
                )

    def _matching(self, query: StatementQuery) -> list[StatementRow]:
        rows = [
            r
            for r in self._rows(query.user_id)
            if (query.since is None or r.created_at >= query.since)
            and (query.until is None or r.created_at < query.until)
            and (not query.kinds or r.kind in {k.value for k in query.kinds})
            and set(query.metadata) <= set(r.metadata)
        ]

        def key(row: StatementRow) -> tuple[int | datetime, int]:
            size = abs(row.amount) if query.sort is StatementSort.AMOUNT else row.created_at
            return size, row.entry_id

        rows.sort(key=key, reverse=query.descending)
        after = query.after_key
        if after is not None:
            rows = [r for r in rows if (key(r) < after if query.descending else key(r) > after)]
        return rows

    async def page(self, query: StatementQuery) -> list[StatementRow]:
        rows = self._matching(query)
        start = (query.page - 1) * query.limit if query.page else 0
        return rows[start : start + query.limit + 1]

    async def count(self, query: StatementQuery) -> int:
        return len(self._matching(query))

    async def balances_at(self, user_id: int, instant: datetime) -> tuple[int, int]:
        last = {"available": 0, "reserved": 0}
        for row in self._rows(user_id):
            if row.created_at <= instant:
                last[row.account] = row.balance_after
        return last["available"], last["reserved"]
