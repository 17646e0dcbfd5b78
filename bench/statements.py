"""Statement page cost at any depth: one user with 1,000,000 entries among 10,000,000.

    .venv/bin/python bench/statements.py [--url postgresql://...] [--reuse]

Creates (or with --reuse keeps) the database `balance_bench_statements` on the
server, migrates it, seeds the entries with one INSERT ... SELECT, then times the
exact statement the PostgreSQL adapter runs for a 50-line cursor page, at the
first page, the middle and the last page, for both sorts and directions. Times
are the server's own execution times (EXPLAIN ANALYZE), and round trips seen by
asyncpg on the same machine, over repeated runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import asyncpg

from adapters.postgres.engine import migrate
from adapters.postgres.statements import page_params, page_sql
from application.statement import build_query, encode_cursor
from application.statement_query import StatementQuery, StatementSort

HOT_USER = 1
HOT_ENTRIES = 1_000_000
TOTAL_ENTRIES = 10_000_000
RUNS = 200

SEED = f"""
WITH tx AS (INSERT INTO transactions (kind) VALUES ('deposit') RETURNING id)
INSERT INTO entries (transaction_id, account, kind, user_id, amount, balance_after, created_at)
SELECT tx.id, 'available', 'deposit',
       CASE WHEN n % 10 = 0 THEN {HOT_USER} ELSE 2 + n % 9999 END,
       1 + (n * 7919) % 100000, n,
       timestamptz '2022-01-01' + n * interval '10 milliseconds'
FROM tx, generate_series(1::bigint, {TOTAL_ENTRIES}) AS n
"""


def compiled(query: StatementQuery) -> tuple[str, list[Any]]:
    sql = page_sql(query)
    return sql.text, sql.arguments(page_params(query))


async def seed(admin_url: str, url: str, reuse: bool) -> None:
    admin = await asyncpg.connect(admin_url)
    exists = await admin.fetchval(
        "SELECT 1 FROM pg_database WHERE datname = 'balance_bench_statements'"
    )
    if exists and not reuse:
        await admin.execute('DROP DATABASE "balance_bench_statements" WITH (FORCE)')
    if not exists or not reuse:
        await admin.execute('CREATE DATABASE "balance_bench_statements"')
    await admin.close()
    await migrate(url)
    db = await asyncpg.connect(url)
    count = await db.fetchval("SELECT count(*) FROM entries")
    if count != TOTAL_ENTRIES:
        started = time.monotonic()
        await db.execute("TRUNCATE entries, transactions RESTART IDENTITY")
        await db.execute(SEED)
        await db.execute("VACUUM ANALYZE entries")
        print(f"seeded {TOTAL_ENTRIES:,} entries in {time.monotonic() - started:.0f} s")
    await db.close()


async def positions(db: asyncpg.Connection, sort: StatementSort, desc: bool) -> dict[str, Any]:
    """Cursor positions at the first page, the middle and the last page of the hot user."""
    key = "abs(amount)" if sort is StatementSort.AMOUNT else "created_at"
    direction = "DESC" if desc else "ASC"
    found: dict[str, Any] = {"first page": None}
    for label, offset in [("middle", HOT_ENTRIES // 2), ("last page", HOT_ENTRIES - 50)]:
        row = await db.fetchrow(
            f"SELECT {key} AS k, id FROM entries WHERE user_id = $1 "
            f"ORDER BY {key} {direction}, id {direction} OFFSET $2 LIMIT 1",
            HOT_USER,
            offset,
        )
        k = row["k"].isoformat() if sort is StatementSort.DATE else int(row["k"])
        found[label] = (k, row["id"])
    return found


async def measure(url: str) -> list[dict[str, Any]]:
    db = await asyncpg.connect(url)
    results = []
    for sort in StatementSort:
        for desc in (True, False):
            for label, position in (await positions(db, sort, desc)).items():
                query = build_query(HOT_USER, limit=50, sort=sort, descending=desc)
                if position is not None:
                    query = build_query(HOT_USER, limit=50, cursor=encode_cursor(query, position))
                sql, params = compiled(query)
                statement = await db.prepare(sql)
                server, trip = [], []
                for _ in range(RUNS):
                    started = time.perf_counter()
                    rows = await statement.fetch(*params)
                    trip.append((time.perf_counter() - started) * 1000)
                    assert len(rows) == 51 or label == "last page", (label, len(rows))
                for _ in range(RUNS // 4):
                    plan = await db.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *params)
                    server.append(json.loads(plan)[0]["Execution Time"])
                results.append(
                    {
                        "sort": sort.value,
                        "order": "desc" if desc else "asc",
                        "depth": label,
                        "server_p50": statistics.median(server),
                        "server_p99": statistics.quantiles(server, n=100)[98],
                        "trip_p50": statistics.median(trip),
                        "trip_p99": statistics.quantiles(trip, n=100)[98],
                    }
                )
    await db.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    args = parser.parse_args()
    bench_url = args.url.rsplit("/", 1)[0] + "/balance_bench_statements"
    asyncio.run(seed(args.url, bench_url, args.reuse))
    results = asyncio.run(measure(bench_url))
    print("| sort | order | depth | server p50 ms | server p99 ms | round trip p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['sort']} | {r['order']} | {r['depth']} | {r['server_p50']:.3f} "
            f"| {r['server_p99']:.3f} | {r['trip_p50']:.3f} | {r['trip_p99']:.3f} |"
        )


if __name__ == "__main__":
    main()
