"""Rows as types: everything a batch writes, in one statement built from row types.

Each table a batch writes has a row type, a NamedTuple whose field names are the
table's columns and whose annotations give their types, and a way it is written
(`Insert`, `Update`). `WriteSet` makes one statement of them: each write is a
data-modifying CTE over `unnest` of one array per column, and the statement
answers how many rows each one wrote. `arrays` turns a list of rows into those
arrays by transposing them. Adding a column to a table a batch writes is a field
on its row type (and the migration): nothing here changes.

Every data-modifying CTE runs whether or not the final SELECT reads it; they run
in the order written, and foreign keys are checked at the end of the statement,
when the rows they point to are there.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Union, get_args, get_origin, get_type_hints

import msgspec

from adapters.postgres.sql import Sql
from application.errors import ConcurrentUpdate


class Json(str):
    """A JSON document's text, for a jsonb column."""

    __slots__ = ()


def metadata_json(metadata: Sequence[tuple[str, str]]) -> Json | None:
    """String pairs as a JSON object, NULL when there are none."""
    return Json(json.dumps(dict(metadata), ensure_ascii=False)) if metadata else None


def pairs_of(document: str | dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    """A metadata column (as the pool's codec decodes jsonb: an object; as plain
    asyncpg does: its text; NULL: none) as sorted pairs."""
    found: dict[str, str] = json.loads(document) if isinstance(document, str) else document or {}
    return tuple(sorted(found.items()))


_SQL_TYPES: dict[type, str] = {
    Json: "jsonb",
    int: "bigint",
    str: "text",
    bytes: "bytea",
    datetime: "timestamptz",
    bool: "boolean",
}


_json = msgspec.json.Encoder().encode


def array_literal(values: Sequence[Any]) -> str:
    """An array literal of ints, booleans or texts: their JSON array, braced, when JSON
    escaped nothing in it (its null, true and false read the same in an array literal,
    and so does a double-quoted text without backslashes); each text quoted by hand
    otherwise."""
    document = _json(values)
    if b"\\" not in document:
        return "{" + document[1:-1].decode() + "}"
    return "{" + ",".join(_quoted(value) for value in values) + "}"


def _quoted(value: object) -> str:
    """An element double-quoted, its backslashes and quotes escaped: anything else
    inside the quotes (commas, braces, spaces, line breaks, the word NULL) is text."""
    if value is None:
        return "NULL"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


# Columns of these types travel as one array literal in a text parameter, which
# PostgreSQL's array input parses (about 50 ns an element more than a binary array).
# asyncpg's binary arrays check every element against three ABCs, a Python call each:
# 360 ns an element against 15, with some 60 elements a movement the largest single
# cost of a batch in the service (bench/RESULTS.md). jsonb, bytea and timestamptz
# columns, few a batch, stay binary arrays.
Encode = Callable[[list[Any]], Any]
_LITERALS: dict[str, Encode] = {
    "bigint": array_literal,
    "boolean": array_literal,
    "text": array_literal,
}


def _as_is(values: list[Any]) -> list[Any]:
    return values


def _array(number: int, sql: str) -> str:
    """Parameter `number` as an array of `sql`."""
    return f"${number}::text::{sql}[]" if sql in _LITERALS else f"${number}::{sql}[]"


@dataclass(frozen=True, slots=True)
class Insert:
    table: str
    if_absent: bool = False
    """ON CONFLICT DO NOTHING: a row created meanwhile shows in the count."""
    keep_order: bool = False
    """Rows go in in list order, so identity ids follow it."""
    given_identity: bool = False
    """The rows carry their identity column's value (OVERRIDING SYSTEM VALUE)."""
    common: tuple[str, ...] = ()
    """Columns every row of the batch has the same value in (the batch's time): sent
    once, as the write set's parameter of that name."""
    numbered: tuple[str, str] | None = None
    """(column, counter table): the rows are numbered from the counter's one row
    (`last_id`), in list order, by updating it in the same statement; its lock, held
    to commit, makes numbers grow in commit order. No rows: the counter is not
    touched (nor locked)."""


@dataclass(frozen=True, slots=True)
class Update:
    table: str
    key: str
    only_if: str = ""
    """A condition on the stored row (`target.column`): rows failing it are left alone
    and missing from the count."""
    also: str = ""
    """More assignments, e.g. `updated_at = clock_timestamp()`; `{name}` stands for the
    write set's parameter of that name, one of `common`."""
    common: tuple[str, ...] = ()
    """The batch-wide values `also` takes."""


@dataclass(frozen=True, slots=True)
class Write:
    name: str
    row: type[NamedTuple]
    how: Insert | Update

    @property
    def may_find_rows_created(self) -> bool:
        """Whether a short count means another transaction created a row first."""
        return isinstance(self.how, Insert) and self.how.if_absent


def columns(row: type[NamedTuple]) -> list[tuple[str, str]]:
    """(name, SQL type) of each field, in order."""
    hints = get_type_hints(row)
    return [(name, _sql_type(hints[name])) for name in row._fields]


def _sql_type(hint: Any) -> str:
    if get_origin(hint) in (Union, types.UnionType):
        (hint,) = [arg for arg in get_args(hint) if arg is not type(None)]
    return _SQL_TYPES[hint]


class WriteSet:
    def __init__(self, *writes: Write, common: dict[str, str] | None = None) -> None:
        """`common`: the batch-wide values (name: SQL type) inserts may take columns from."""
        self.writes = writes
        self.common = common or {}
        self._encoders: list[tuple[Write, list[tuple[str, Encode]]]] = []
        for write in writes:
            fields = columns(write.row)
            params = [f"{write.name}_{name}" for name, _ in fields]
            encoders = [_LITERALS.get(sql, _as_is) for _, sql in fields]
            self._encoders.append((write, list(zip(params, encoders, strict=True))))
        self.sql = self._statement(writes)
        """Every write's arm: what `sql_for` answers when every write has rows."""
        self._shapes: dict[tuple[bool, ...], Sql] = {(True,) * len(writes): self.sql}

    def sql_for(self, rows: Mapping[str, Sequence[object]]) -> Sql | None:
        """The statement of the writes that have rows (None: nothing to write). An arm
        with no rows still cost the server its planning and its tables' and indexes'
        opening, every batch: a batch of deposits has no reservation, no tag."""
        shape = tuple(bool(rows.get(write.name)) for write in self.writes)
        sql = self._shapes.get(shape)
        if sql is None and any(shape):
            sql = self._shapes[shape] = self._statement(
                tuple(w for w, has in zip(self.writes, shape, strict=True) if has)
            )
        return sql

    def _statement(self, writes: tuple[Write, ...]) -> Sql:
        used = {c for w in writes for c in w.how.common}
        common = [(name, sql) for name, sql in self.common.items() if name in used]
        names: list[str] = [name for name, _ in common]
        shared = {name: f"${i}::{sql}" for i, (name, sql) in enumerate(common, 1)}
        ctes = []
        for write in writes:
            fields = columns(write.row)
            first = len(names) + 1
            names += [f"{write.name}_{name}" for name, _ in fields]
            if isinstance(write.how, Insert) and write.how.numbered is not None:
                ctes.append(_counter(write, first))
            ctes.append(f"{write.name} AS ({_cte(write, fields, first, shared)})")
        counts = ", ".join(f"(SELECT count(*) FROM {w.name}) AS {w.name}" for w in writes)
        return Sql(f"WITH {', '.join(ctes)} SELECT {counts}", tuple(names), {})

    def params(
        self, rows: Mapping[str, Sequence[tuple[Any, ...]]], **common: Any
    ) -> dict[str, Any]:
        """The batch-wide values, and one array per column of each write that has rows,
        from its rows. A write with none has no arm in the statement `sql_for` gives
        (a batch of deposits leaves out four of nine, some twenty columns), so nothing
        is encoded for it."""
        params: dict[str, Any] = {name: common[name] for name in self.common}
        for write, encoders in self._encoders:
            found = rows.get(write.name)
            if not found:
                continue
            for (name, encode), column in zip(encoders, arrays(write.row, found), strict=True):
                params[name] = encode(column)
        return params

    def check(self, counts: Mapping[str, int], rows: Mapping[str, Sequence[object]]) -> None:
        """Every row written: a short count of rows created means another transaction
        created one first (ConcurrentUpdate: run again); any other short count, that a
        locked row changed under its lock, which cannot be. A write the statement left
        out (no rows) counts 0."""
        wrote = {w.name: counts.get(w.name, 0) for w in self.writes}
        short = {w for w in self.writes if wrote[w.name] != len(rows.get(w.name, ()))}
        if any(w.may_find_rows_created for w in short):
            raise ConcurrentUpdate(f"rows created meanwhile: {wrote}")
        if short:
            raise AssertionError(f"locked rows changed under the lock: {wrote}")


def _counter(write: Write, first: int) -> str:
    """The CTE taking a numbered write's range from its counter: `base` + 1.. are its."""
    assert isinstance(write.how, Insert)
    assert write.how.numbered is not None
    count = f"cardinality({_array(first, columns(write.row)[0][1])})"
    return (
        f"{write.name}_ids AS (UPDATE {write.how.numbered[1]} SET last_id = last_id + {count}"
        f" WHERE {count} > 0 RETURNING last_id - {count} AS base)"
    )


def arrays(row: type[NamedTuple], rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    if not rows:
        return [[] for _ in row._fields]
    return [list(column) for column in zip(*rows, strict=True)]


def _unnest(fields: list[tuple[str, str]], first: int) -> str:
    arrays_ = ", ".join(_array(first + i, sql) for i, (_, sql) in enumerate(fields))
    return f"unnest({arrays_})"


def _cte(write: Write, fields: list[tuple[str, str]], first: int, shared: dict[str, str]) -> str:
    names = ", ".join(name for name, _ in fields)
    how = write.how
    if isinstance(how, Update):
        sets = ", ".join(f"{n} = r.{n}" for n, _ in fields if n != how.key)
        sets += f", {how.also.format_map(shared)}" if how.also else ""
        guard = f" AND {how.only_if}" if how.only_if else ""
        return (
            f"UPDATE {how.table} AS target SET {sets}"
            f" FROM {_unnest(fields, first)} AS r({names})"
            f" WHERE target.{how.key} = r.{how.key}{guard} RETURNING 1"
        )
    overriding = " OVERRIDING SYSTEM VALUE" if how.given_identity else ""
    source = f"{_unnest(fields, first)} AS r({names})"
    order = ""
    if how.keep_order or how.numbered:
        source = f"{_unnest(fields, first)} WITH ORDINALITY AS r({names}, position)"
        order = " ORDER BY r.position"
    conflict = " ON CONFLICT DO NOTHING" if how.if_absent else ""
    selected = ", ".join([*(f"r.{name}" for name, _ in fields), *(shared[c] for c in how.common)])
    targets = ", ".join([names, *how.common])
    if how.numbered is not None:
        source = f"{write.name}_ids AS n, {source}"
        selected = f"n.base + r.position, {selected}"
        targets = f"{how.numbered[0]}, {targets}"
    return (
        f"INSERT INTO {how.table} ({targets}){overriding} SELECT {selected} FROM {source}"
        f"{order}{conflict} RETURNING 1"
    )
