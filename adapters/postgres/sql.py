"""SQLAlchemy Core builds the SQL; asyncpg runs it, prepared, with no layer between.

Through SQLAlchemy's AsyncConnection every statement paid for a greenlet switch, a
compiled-cache lookup and result processing: about a third of a money movement's
CPU. Here every statement is compiled once (`compile_sql`, at import or once per
shape of a statement page) and asyncpg runs it with its values as parameters.
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
    timeout: float | None = None
    """Seconds it may run; None: the connection's `command_timeout`."""

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[n] if n in params else self.bound[n] for n in self.names]


def compile_sql(statement: ClauseElement, *, timeout: float | None = None) -> Sql:
    compiled = statement.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
    names = getattr(compiled, "positiontup", None) or ()  # SQLCompiler's, for $n styles
    return Sql(str(compiled), tuple(names), dict(compiled.params), timeout)


class Db:
    """One asyncpg connection, spoken to in compiled statements."""

    __slots__ = ("connection",)

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def rows(self, sql: Sql, **params: Any) -> list[asyncpg.Record]:
        return await self.connection.fetch(  # type: ignore[no-any-return]
            sql.text, *sql.arguments(params), timeout=sql.timeout
        )

    async def row(self, sql: Sql, **params: Any) -> asyncpg.Record | None:
        return await self.connection.fetchrow(sql.text, *sql.arguments(params), timeout=sql.timeout)

    async def value(self, sql: Sql, **params: Any) -> Any:
        return await self.connection.fetchval(sql.text, *sql.arguments(params), timeout=sql.timeout)

    async def run(self, sql: Sql, **params: Any) -> str:
        """The command tag, e.g. 'UPDATE 1'."""
        return await self.connection.execute(  # type: ignore[no-any-return]
            sql.text, *sql.arguments(params), timeout=sql.timeout
        )


class Writes(Protocol):
    """A unit of work's connection as a repository that writes sees it."""

    @property
    def db(self) -> Db: ...

    async def begin(self) -> None:
        """Open the transaction, once, before the first lock or write."""
