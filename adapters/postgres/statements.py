"""Statement reads: keyset pages on (user_id, created_at, id) or (user_id, abs(amount), id)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    Text,
    bindparam,
    func,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, distinct_on

from adapters.postgres.sql import Db, Sql, compile_sql
from adapters.postgres.tables import (
    TimestampTZ,
    entries,
    services,
    transaction_tags,
    transactions,
)
from adapters.postgres.write_set import pairs_of
from application.ports import StatementRow, Statements
from application.statement_query import StatementQuery, StatementSort

_e, _t, _s, _g = entries.c, transactions.c, services.c, transaction_tags.c


_ID = bindparam("entry_id", type_=BigInteger)


def _sort_key(query: StatementQuery) -> tuple[ColumnElement[Any], BindParameter[Any]]:
    """The keyset column and the parameter a cursor's position fills."""
    if query.sort is StatementSort.AMOUNT:
        return func.abs(_e.amount), bindparam("after", type_=BigInteger)
    return _e.created_at, bindparam("after", type_=TimestampTZ)


def _filtered(query: StatementQuery, *columns: Any) -> Select[Any]:
    statement = select(*columns).where(_e.user_id == bindparam("user_id", type_=BigInteger))
    if query.metadata:
        # Walk the user's tagged transactions in time order (transaction_tags' key),
        # the first pair's tag, then check every pair on the transaction.
        tagged = (_g.transaction_id == _e.transaction_id) & (_g.user_id == _e.user_id)
        statement = (
            statement.select_from(transaction_tags)
            .join(entries, tagged)
            .where(
                _g.user_id == bindparam("user_id", type_=BigInteger),
                _g.tag == bindparam("tag", type_=Text),
                _t.metadata.contains(bindparam("pairs", type_=JSONB)),
            )
        )
    if query.since is not None:
        statement = statement.where(_e.created_at >= bindparam("since", type_=TimestampTZ))
    if query.until is not None:
        statement = statement.where(_e.created_at < bindparam("until", type_=TimestampTZ))
    if query.kinds:  # one array parameter, so any set of kinds has the same shape
        statement = statement.where(_e.kind == func.any(bindparam("kinds", type_=ARRAY(Text))))
    return statement


def _page_statement(query: StatementQuery) -> Select[Any]:
    """One statement page; the keyset condition follows the index column order."""
    key, after_value = _sort_key(query)
    statement = (
        _filtered(
            query,
            _e.id,
            _e.transaction_id,
            _e.kind,
            _e.account,
            _e.amount,
            _e.balance_after,
            _e.created_at,
            _t.description,
            _t.service_id,
            _s.name.label("service_name"),
            _t.order_id,
            _t.user_id.label("transaction_user_id"),
            _t.counterparty_user_id,
            _t.metadata,
            _t.caller,
        )
        .join(transactions, _t.id == _e.transaction_id)
        .outerjoin(services, _s.service_id == _t.service_id)
    )
    if query.after_key is not None:
        after, bound = tuple_(key, _e.id), tuple_(after_value, _ID)
        statement = statement.where(after < bound if query.descending else after > bound)
    order: tuple[Any, ...] = (
        (key.desc(), _e.id.desc()) if query.descending else (key.asc(), _e.id.asc())
    )
    statement = statement.order_by(*order).limit(bindparam("limit", type_=Integer))
    if query.page is not None:
        statement = statement.offset(bindparam("offset", type_=BigInteger))
    return statement


Shape = tuple[StatementSort, bool, bool, bool, bool, bool, bool, bool, bool]


def _shape(query: StatementQuery) -> Shape:
    """What changes a page's SQL text (its values are parameters)."""
    return (
        query.sort,
        query.descending,
        query.since is not None,
        query.until is not None,
        bool(query.kinds),
        query.after_key is not None,
        query.page is not None,
        bool(query.metadata),
        len(query.metadata) > 1,  # the tag walk checks the other pairs
    )


_PAGES: dict[Shape, Sql] = {}
_COUNTS: dict[Shape, Sql] = {}


def page_sql(query: StatementQuery) -> Sql:
    """The page's statement, compiled once per shape (at most 2**9 of them)."""
    shape = _shape(query)
    if shape not in _PAGES:
        walks = query.metadata and query.sort is StatementSort.DATE and query.page is None
        _PAGES[shape] = _tag_walk(query) if walks else compile_sql(_page_statement(query))
    return _PAGES[shape]


_COLUMNS = (
    "e.id, e.transaction_id, e.kind, e.account, e.amount, e.balance_after, e.created_at,"
    " t.description, t.service_id, s.name AS service_name, t.order_id,"
    " t.user_id AS transaction_user_id, t.counterparty_user_id, t.metadata, t.caller"
)


_WALK_TYPES: list[tuple[str, Any]] = [
    ("user_id", BigInteger),
    ("tag", Text),
    ("tags", ARRAY(Text)),
    ("kinds", ARRAY(Text)),
    ("since", TimestampTZ),
    ("until", TimestampTZ),
    ("after", TimestampTZ),
    ("entry_id", BigInteger),
    ("walk", Integer),
    ("limit", Integer),
]


def _tag_walk(query: StatementQuery) -> Sql:
    """A page by date of the entries of transactions tagged with every given pair.

    The user's tagged transactions are walked in the statement's own order on
    transaction_tags' key (one pair's tag: of several, the rarest, as far as 1,000
    counts tell; the others checked on each), every filter inside the walk, up to
    as many transactions as the page can need (each has an entry of the user; the
    cursor's own may have none left): so the plan is an index range scan of the tags,
    generic or not, and a page costs the same at any depth, for a rare or a common
    tag. By date, the user's entries are in the same order as their transactions'
    (created_at, transaction id), and among one transaction's by id."""
    less, way = ("<", "DESC") if query.descending else (">", "ASC")
    walk = ["g.user_id = :user_id", "g.tag = :tag"]
    if len(query.metadata) > 1:  # walk the rarest pair's tag: counted up to 1,000 each
        walk[1] = (
            "g.tag = (SELECT x.tag FROM unnest(:tags) AS x(tag) ORDER BY (SELECT count(*)"
            " FROM (SELECT 1 FROM transaction_tags AS c WHERE c.user_id = :user_id"
            " AND c.tag = x.tag LIMIT 1000) AS b), x.tag LIMIT 1)"
        )
    if query.since is not None:
        walk.append("g.created_at >= :since")
    if query.until is not None:
        walk.append("g.created_at < :until")
    if query.after_key is not None:  # from the cursor's transaction on, itself included
        walk.append(
            f"(g.created_at, g.transaction_id) {less}= (:after,"
            " (SELECT transaction_id FROM entries WHERE id = :entry_id))"
        )
    if len(query.metadata) > 1:
        walk.append(
            "(SELECT count(*) FROM transaction_tags AS h WHERE h.user_id = g.user_id"
            " AND h.tag = ANY(:tags) AND h.created_at = g.created_at"
            " AND h.transaction_id = g.transaction_id) = cardinality(:tags)"
        )
    if query.kinds:
        walk.append(  # fenced as below, for the same reason
            "EXISTS (SELECT 1 FROM (SELECT k.user_id, k.kind FROM entries AS k"
            " WHERE k.transaction_id = g.transaction_id OFFSET 0) AS k"
            " WHERE k.user_id = g.user_id AND k.kind = ANY(:kinds))"
        )
    entry = ["TRUE"]
    if query.after_key is not None:
        entry.append(f"(e.created_at, e.id) {less} (:after, :entry_id)")
    if query.kinds:
        entry.append("e.kind = ANY(:kinds)")
    sql = (
        f"WITH walk AS MATERIALIZED (SELECT g.created_at, g.transaction_id"
        f" FROM transaction_tags AS g WHERE {' AND '.join(walk)}"
        f" ORDER BY g.created_at {way}, g.transaction_id {way} LIMIT :walk)"
        f" SELECT {_COLUMNS} FROM walk"
        # Each walked transaction's entries by entries_transaction, fenced (LATERAL,
        # OFFSET 0) so no filter reaches the index choice: a join, or a user filter
        # inside, let a plan (the generic one, for one) drive by or AND in the user's
        # entries, a scan of all of them (seconds, for a million).
        " CROSS JOIN LATERAL (SELECT * FROM entries AS e"
        " WHERE e.transaction_id = walk.transaction_id OFFSET 0) AS e"
        " JOIN transactions AS t ON t.id = e.transaction_id"
        " LEFT JOIN services AS s ON s.service_id = t.service_id"
        f" WHERE e.user_id = :user_id AND {' AND '.join(entry)}"
        f" ORDER BY e.created_at {way}, e.id {way} LIMIT :limit"
    )
    named = set(re.findall(r":(\w+)", sql))
    used = [bindparam(name, type_=kind) for name, kind in _WALK_TYPES if name in named]
    statement = text(sql).bindparams(*used)
    return compile_sql(statement)


def _count_sql(query: StatementQuery) -> Sql:
    shape = _shape(query)
    if shape not in _COUNTS:
        _COUNTS[shape] = compile_sql(_filtered(query, func.count()).select_from(entries))
    return _COUNTS[shape]


def page_params(query: StatementQuery) -> dict[str, Any]:
    after, entry_id = query.after_key if query.after_key is not None else (None, None)
    return {
        "user_id": query.user_id,
        "since": query.since,
        "until": query.until,
        "kinds": sorted(k.value for k in query.kinds),
        "after": after,
        "entry_id": entry_id,
        "limit": query.limit + 1,
        "offset": (query.page - 1) * query.limit if query.page is not None else None,
        "tag": "=".join(query.metadata[0]) if query.metadata else None,
        "tags": ["=".join(pair) for pair in query.metadata],
        "walk": query.limit + 2,
        "pairs": json.dumps(dict(query.metadata)) if query.metadata else None,
    }


_BALANCES_AT = compile_sql(
    select(_e.account, _e.balance_after)
    .where(
        _e.user_id == bindparam("user_id", type_=BigInteger),
        _e.created_at <= bindparam("instant", type_=TimestampTZ),
    )
    .order_by(_e.account, _e.created_at.desc(), _e.id.desc())
    .ext(distinct_on(_e.account))
)


def _row(row: Sequence[Any]) -> StatementRow:
    """A page's row: its columns in order, the transaction's metadata and caller last."""
    return StatementRow(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9],
        row[10], row[11], row[12], pairs_of(row[13]), row[14],
    )  # fmt: skip


class PostgresStatements(Statements):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def page(self, query: StatementQuery) -> list[StatementRow]:
        rows = await self._db.rows(page_sql(query), **page_params(query))
        return [_row(row) for row in rows]

    async def count(self, query: StatementQuery) -> int:
        rows = await self._db.rows(_count_sql(query), **page_params(query))
        return int(rows[0][0] or 0)

    async def balances_at(self, user_id: int, instant: datetime) -> tuple[int, int]:
        rows = await self._db.rows(_BALANCES_AT, user_id=user_id, instant=instant)
        found = {row["account"]: row["balance_after"] for row in rows}
        return found.get("available", 0), found.get("reserved", 0)
