"""A statement page's SQL is cached per shape: the shape must hold all that changes it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from types import SimpleNamespace

from adapters.postgres import statements
from adapters.postgres.statements import page_sql
from application.statement import build_query, describe, encode_cursor
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


WORDS = {
    EntryKind.DEPOSIT: "Deposit",
    EntryKind.WITHDRAWAL: "Withdrawal",
    EntryKind.TRANSFER_IN: "Transfer from user 9",
    EntryKind.TRANSFER_OUT: "Transfer to user 9",
    EntryKind.RESERVE: "Reserved for order 77, service 'Shop'",
    EntryKind.CANCEL: "Reservation for order 77 cancelled",
    EntryKind.RECOGNIZE: "Revenue recognized for order 77, service 'Shop'",
    EntryKind.RELEASE: "Unused rest of order 77 returned",
    EntryKind.EXPIRE: "Reservation for order 77 expired",
    EntryKind.MOVEMENT_OUT: "Sent in a movement",
    EntryKind.MOVEMENT_IN: "Received in a movement",
}


def test_every_kind_of_line_has_its_words() -> None:
    """What a statement line says, kind by kind (clients show it to people)."""
    assert WORDS.keys() == set(EntryKind)
    for kind, words in WORDS.items():
        row = SimpleNamespace(service_name="Shop", service_id=5, order_id=77, note=None)
        assert describe(kind, row, 9) == words  # type: ignore[arg-type]
        noted = SimpleNamespace(service_name=None, service_id=5, order_id=77, note="why")
        said = describe(kind, noted, 9)  # type: ignore[arg-type]
        assert said == words.replace("'Shop'", "#5") + ": why"
