"""Statement reads: keyset pages on (user_id, created_at, id) or (user_id, abs(amount), id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, func, literal, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on

from adapters.postgres.sql import Db
from adapters.postgres.tables import entries, services, transactions
from application.ports import StatementRow, Statements
from application.statement_query import StatementQuery, StatementSort

_e, _t, _s = entries.c, transactions.c, services.c


def _sort_key(query: StatementQuery) -> ColumnElement[Any]:
    return func.abs(_e.amount) if query.sort is StatementSort.AMOUNT else _e.created_at


def _filtered(query: StatementQuery, *columns: Any) -> Select[Any]:
    statement = select(*columns).where(_e.user_id == query.user_id)
    if query.since is not None:
        statement = statement.where(_e.created_at >= query.since)
    if query.until is not None:
        statement = statement.where(_e.created_at < query.until)
    if query.kinds:  # one array parameter, so any set of kinds has the same shape
        kinds = sorted(k.value for k in query.kinds)
        statement = statement.where(_e.kind == func.any(literal(kinds, ARRAY(Text))))
    return statement


def page_statement(query: StatementQuery) -> Select[Any]:
    """One statement page; the keyset condition follows the index column order."""
    key = _sort_key(query)
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
        value, entry_id = query.after_key
        after = tuple_(key, _e.id)
        bound = tuple_(literal(value), literal(entry_id))
        statement = statement.where(after < bound if query.descending else after > bound)
    order = (key.desc(), _e.id.desc()) if query.descending else (key.asc(), _e.id.asc())
    statement = statement.order_by(*order).limit(query.limit + 1)
    if query.page is not None:
        statement = statement.offset((query.page - 1) * query.limit)
    return statement


class PostgresStatements(Statements):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def page(self, query: StatementQuery) -> list[StatementRow]:
        rows = await self._db.query(page_statement(query))
        return [StatementRow(*row) for row in rows]

    async def count(self, query: StatementQuery) -> int:
        counted = _filtered(query, func.count()).select_from(entries)
        return int((await self._db.query(counted))[0][0] or 0)

    async def balances_at(self, user_id: int, instant: datetime) -> tuple[int, int]:
        latest = (
            select(_e.account, _e.balance_after)
            .where(_e.user_id == user_id, _e.created_at <= instant)
            .order_by(_e.account, _e.created_at.desc(), _e.id.desc())
            .ext(distinct_on(_e.account))
        )
        rows = await self._db.query(latest)
        found = {row["account"]: row["balance_after"] for row in rows}
        return found.get("available", 0), found.get("reserved", 0)
