"""SQLAlchemy Core builds the SQL; asyncpg runs it, prepared, with no layer between.

Through SQLAlchemy's AsyncConnection every statement paid for a greenlet switch, a
compiled-cache lookup and result processing: about a third of a money movement's
CPU. Here a statement is compiled once (`Sql`) or per call for dynamic reads
(`compile_sql`), and asyncpg prepares and caches it per connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql import ClauseElement

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class Sql:
    """A compiled statement: its text with $n placeholders and the names they stand for."""

    text: str
    names: tuple[str, ...]
    bound: Mapping[str, Any]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[n] if n in params else self.bound[n] for n in self.names]


_SHAPES: dict[Any, tuple[str, tuple[str, ...], tuple[str, ...]]] = {}
_MAX_SHAPES = 1024


def compile_cached(statement: ClauseElement) -> tuple[str, list[Any]]:
    """A dynamic statement's text and arguments, compiled once per shape.

    SQLAlchemy's cache key (the one its own compiled cache uses) is equal for
    statements that differ only in bound values, and lists those values in a
    stable order; the first compilation tells which placeholder each one fills.
    """
    key = statement._generate_cache_key()  # SQLAlchemy's own cache key (semi-private)
    if key is None:  # not cacheable: compile every time
        sql = compile_sql(statement)
        return sql.text, sql.arguments({})
    shape = _SHAPES.get(key.key)
    if shape is None:
        compiled = statement.compile(dialect=_DIALECT)
        name_of = {id(bind): name for name, bind in getattr(compiled, "binds", {}).items()}
        order = tuple(name_of[id(bind)] for bind in key.bindparams)
        names = tuple(getattr(compiled, "positiontup", None) or ())
        shape = (str(compiled), order, names)
        if len(_SHAPES) < _MAX_SHAPES:
            _SHAPES[key.key] = shape
    text, order, names = shape
    values = {name: bind.effective_value for name, bind in zip(order, key.bindparams, strict=True)}
    return text, [values[n] for n in names]


def compile_sql(statement: ClauseElement) -> Sql:
    compiled = statement.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
    names = getattr(compiled, "positiontup", None) or ()  # SQLCompiler's, for $n styles
    return Sql(str(compiled), tuple(names), dict(compiled.params))


class Db:
    """One asyncpg connection, spoken to in compiled statements."""

    __slots__ = ("connection",)

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def query(self, statement: ClauseElement) -> list[asyncpg.Record]:
        """A statement built per call (a statement page): compiled once per shape."""
        text, arguments = compile_cached(statement)
        return await self.connection.fetch(text, *arguments)  # type: ignore[no-any-return]

    async def rows(self, sql: Sql, **params: Any) -> list[asyncpg.Record]:
        return await self.connection.fetch(sql.text, *sql.arguments(params))  # type: ignore[no-any-return]

    async def row(self, sql: Sql, **params: Any) -> asyncpg.Record | None:
        return await self.connection.fetchrow(sql.text, *sql.arguments(params))

    async def run(self, sql: Sql, **params: Any) -> str:
        """The command tag, e.g. 'UPDATE 1'."""
        return await self.connection.execute(sql.text, *sql.arguments(params))  # type: ignore[no-any-return]


class Writes(Protocol):
    """A unit of work's connection as a repository that writes sees it."""

    db: Db

    async def begin(self) -> None:
        """Open the transaction, once, before the first lock or write."""
