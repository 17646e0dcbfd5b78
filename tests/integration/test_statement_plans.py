"""Plans: a cursor page is an index range scan, never a scan of the user's entries; a
batch's write is planned once per connection."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from adapters.postgres.engine import create_engine
from adapters.postgres.movements import PostgresMovementBatch
from adapters.postgres.session import Session
from adapters.postgres.statements import page_params, page_sql
from application.deposit import Deposit, deposit
from application.runner import MoneyMovements
from application.statement import build_query, encode_cursor
from application.statement_query import StatementQuery, StatementSort
from tests import postgres
from tests.helpers import keep, rub

pytestmark = pytest.mark.postgres

SEED = """
WITH tx AS (INSERT INTO transactions (kind) VALUES ('deposit') RETURNING id)
INSERT INTO entries (transaction_id, account, kind, user_id, amount, balance_after, created_at)
SELECT tx.id, 'available', 'deposit', 1 + n % 50, 1 + n % 997, n,
       timestamptz '2022-01-01' + n * interval '1 second'
FROM tx, generate_series(1, 60000) AS n
"""


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *[node for child in plan.get("Plans", []) for node in plan_nodes(child)]]


async def explain(db: asyncpg.Connection, query: StatementQuery) -> list[dict[str, Any]]:
    sql = page_sql(query)
    raw = await db.fetchval(f"EXPLAIN (FORMAT JSON) {sql.text}", *sql.arguments(page_params(query)))
    return plan_nodes(json.loads(raw)[0]["Plan"])


@pytest.mark.parametrize("sort", list(StatementSort))
@pytest.mark.parametrize("descending", [True, False])
async def test_cursor_pages_use_the_statement_indexes(
    pg_url: str, sort: StatementSort, descending: bool
) -> None:
    await postgres.truncate(pg_url)
    db = await asyncpg.connect(pg_url)
    try:
        await db.execute(SEED)
        await db.execute("ANALYZE entries")
        first = build_query(7, limit=50, sort=sort, descending=descending)
        position: tuple[int | str, int] = (
            (500, 30_000) if sort is StatementSort.AMOUNT else ("2022-01-01T05:00:00+00:00", 30_000)
        )
        deep = build_query(7, limit=50, cursor=encode_cursor(first, position))
        for query in (first, deep):
            nodes = await explain(db, query)
            entry_scans = [n for n in nodes if n.get("Relation Name") == "entries"]
            assert entry_scans, nodes
            assert all(n["Node Type"] != "Seq Scan" for n in entry_scans), entry_scans
            expected = (
                "entries_user_by_amount" if sort is StatementSort.AMOUNT else "entries_user_by_date"
            )
            assert {n.get("Index Name") for n in entry_scans} == {expected}
            assert not any(n["Node Type"] == "Sort" for n in nodes), "the index gives the order"
    finally:
        await db.close()


WRITE_PLANS = """
    SELECT coalesce(sum(generic_plans), 0)::int, coalesce(sum(custom_plans), 0)::int
    FROM pg_prepared_statements WHERE statement LIKE 'WITH saved AS (UPDATE accounts%'"""


async def test_a_batch_writes_with_the_generic_plan_whatever_its_size(pg_url: str) -> None:
    """A batch's write statement is planned once per connection, not once per batch.

    PostgreSQL's plan cache planned it again for every small batch: it guessed from
    the arrays' sizes that a plan of its own was cheaper than the generic one, and
    each such plan cost the server 0.4-0.5 ms of CPU, as much as all the rest of a
    one-deposit batch. The lock statement sets `plan_cache_mode` for its transaction."""
    await postgres.truncate(pg_url)
    engine = create_engine(pg_url, pool_size=1)  # every batch on one connection
    try:
        movements = MoneyMovements(lambda: PostgresMovementBatch(engine), max_in_flight=1)

        async def batch(size: int) -> None:
            users = range(1, size + 1)
            await asyncio.gather(
                *(movements.execute(deposit, Deposit(u, rub("1")), keep) for u in users)
            )

        await batch(5)  # opens the accounts: a statement of another shape
        for size in (1, 1, 3, 1, 2, 1, 1, 5, 1, 1):  # sizes as a quiet hour sends them
            await batch(size)
        async with Session(engine) as session:
            generic, custom = await session.db.connection.fetchrow(WRITE_PLANS)
    finally:
        await engine.dispose()
    assert (generic, custom) == (10, 0)
