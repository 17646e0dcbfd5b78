"""The write set's arrays reach PostgreSQL as they were: ints, booleans and texts travel
as array literals in text parameters, so every awkward text (quotes, backslashes,
braces, commas, spaces, line breaks, the word NULL, nothing at all) must come back
unchanged, and NULL stay NULL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import NamedTuple

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.postgres.write_set import Insert, Json, Write, WriteSet

pytestmark = pytest.mark.postgres


class Thing(NamedTuple):
    id: int
    amount: int | None
    name: str | None
    flag: bool | None
    at: datetime | None
    doc: Json | None
    body: bytes | None


WRITES = WriteSet(Write("added", Thing, Insert("things", keep_order=True)))
TABLE = """
CREATE TABLE IF NOT EXISTS things (
    id BIGINT, amount BIGINT, name TEXT, flag BOOLEAN, at TIMESTAMPTZ, doc JSONB, body BYTEA
)
"""
AWKWARD = ['"', "\\", '\\"', "NULL", "null", "{}", "{a,b}", ",", " ", "", "a b\n\tc", "é€𝄞", "'"]
texts = st.one_of(
    st.none(),
    st.sampled_from(AWKWARD),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
)
things = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
        texts,
        st.one_of(st.none(), st.booleans()),
    ),
    max_size=30,
)


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg_url)
    await connection.execute(TABLE)
    yield connection
    await connection.execute("DROP TABLE things")
    await connection.close()


async def write(db: asyncpg.Connection, rows: list[Thing]) -> list[Thing]:
    await db.execute("TRUNCATE things")
    sql = WRITES.sql_for({"added": rows})
    if sql is None:  # no rows: no statement
        assert not rows
        return []
    params = WRITES.params({"added": rows})
    counts = await db.fetchrow(sql.text, *sql.arguments(params))
    assert counts is not None
    assert counts["added"] == len(rows)
    found = await db.fetch("SELECT * FROM things ORDER BY id")
    return [Thing(*row) for row in found]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(values=things)
async def test_ints_booleans_and_texts_come_back_as_written(
    db: asyncpg.Connection, values: list[tuple[int | None, str | None, bool | None]]
) -> None:
    rows = [
        Thing(i, amount, name, flag, None, None, None)
        for i, (amount, name, flag) in enumerate(values)
    ]
    assert await write(db, rows) == rows


async def test_every_awkward_text_and_the_binary_columns_come_back(db: asyncpg.Connection) -> None:
    at = datetime(2026, 12, 3, 23, 59, 59, 123456, tzinfo=UTC)
    rows = [
        Thing(i, -i, text, i % 2 == 0, at, Json(f'{{"k": "{i}"}}'), text.encode())
        for i, text in enumerate(AWKWARD)
    ]
    rows.append(Thing(len(rows), None, None, None, None, None, None))
    found = await write(db, rows)
    assert [row[:5] for row in found] == [row[:5] for row in rows]
    assert [row.body for row in found] == [row.body for row in rows]
    assert [row.doc for row in found][:2] == ['{"k": "0"}', '{"k": "1"}']
