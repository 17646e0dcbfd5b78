"""A statement page's SQL is cached per shape: the shape must hold all that changes it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from adapters.postgres import statements
from adapters.postgres.statements import page_sql
from application.statement import build_query, encode_cursor
from application.statement_query import StatementQuery, StatementSort
from domain.ledger import EntryKind

WHEN = datetime(2022, 1, 1, tzinfo=UTC)


def variations() -> list[StatementQuery]:
    found = []
    for sort, descending, tags, kinds, since, page in itertools.product(
        StatementSort,
        (True, False),
        ((), (("t", "a"),), (("t", "a"), ("u", "x"))),
        (None, frozenset({EntryKind.DEPOSIT})),
        (None, WHEN),
        (None, 2),
    ):
        query = build_query(
            7, limit=5, sort=sort, descending=descending, metadata=tags, kinds=kinds,
            since=since, page=page,
        )  # fmt: skip
        found.append(query)
        if page is None:
            position = (500, 3) if sort is StatementSort.AMOUNT else (WHEN.isoformat(), 3)
            found.append(build_query(7, limit=5, cursor=encode_cursor(query, position)))
    return found


def test_every_query_gets_the_sql_compiled_for_it_whatever_came_before() -> None:
    queries = variations()
    fresh = []
    for query in queries:
        statements._PAGES.clear()
        fresh.append(page_sql(query).text)
    statements._PAGES.clear()
    for order in (queries, list(reversed(queries))):
        for query, text in zip(order, fresh if order is queries else reversed(fresh), strict=True):
            assert page_sql(query).text == text, query
        statements._PAGES.clear()
