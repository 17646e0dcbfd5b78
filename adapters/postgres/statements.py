"""Statement reads: keyset pages on (user_id, created_at, id) or (user_id, abs(amount), id)."""

from __future__ import annotations

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
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on

from adapters.postgres.sql import Db, Sql, compile_sql
from adapters.postgres.tables import TimestampTZ, entries, services, transactions
from application.ports import StatementRow, Statements
from application.statement_query import StatementQuery, StatementSort

_e, _t, _s = entries.c, transactions.c, services.c


_ID = bindparam("entry_id", type_=BigInteger)


def _sort_key(query: StatementQuery) -> tuple[ColumnElement[Any], BindParameter[Any]]:
    """The keyset column and the parameter a cursor's position fills."""
    if query.sort is StatementSort.AMOUNT:
        return func.abs(_e.amount), bindparam("after", type_=BigInteger)
    return _e.created_at, bindparam("after", type_=TimestampTZ)


def _filtered(query: StatementQuery, *columns: Any) -> Select[Any]:
    statement = select(*columns).where(_e.user_id == bindparam("user_id", type_=BigInteger))
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
        )
        .join_from(entries, transactions, _t.id == _e.transaction_id)
        .outerjoin(services, _s.service_id == _t.service_id)
    )
    if query.after_key is not None:
        after, bound = tuple_(key, _e.id), tuple_(after_value, _ID)
        statement = statement.where(after < bound if query.descending else after > bound)
    order = (key.desc(), _e.id.desc()) if query.descending else (key.asc(), _e.id.asc())
    statement = statement.order_by(*order).limit(bindparam("limit", type_=Integer))
    if query.page is not None:
        statement = statement.offset(bindparam("offset", type_=BigInteger))
    return statement


Shape = tuple[StatementSort, bool, bool, bool, bool, bool, bool]


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
    )


_PAGES: dict[Shape, Sql] = {}
_COUNTS: dict[Shape, Sql] = {}


def page_sql(query: StatementQuery) -> Sql:
    """The page's statement, compiled once per shape (at most 2**7 of them)."""
    shape = _shape(query)
    if shape not in _PAGES:
        _PAGES[shape] = compile_sql(_page_statement(query))
    return _PAGES[shape]


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


class PostgresStatements(Statements):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def page(self, query: StatementQuery) -> list[StatementRow]:
        rows = await self._db.rows(page_sql(query), **page_params(query))
        return [StatementRow(*row) for row in rows]

    async def count(self, query: StatementQuery) -> int:
        rows = await self._db.rows(_count_sql(query), **page_params(query))
        return int(rows[0][0] or 0)

    async def balances_at(self, user_id: int, instant: datetime) -> tuple[int, int]:
        rows = await self._db.rows(_BALANCES_AT, user_id=user_id, instant=instant)
        found = {row["account"]: row["balance_after"] for row in rows}
        return found.get("available", 0), found.get("reserved", 0)
