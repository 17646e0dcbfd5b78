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

ORDERS = 100_000  # `metadata.order`: about 10 of the hot user's entries each
# The hot user's entries each have a transaction of their own, tagged with an order and
# a channel (half `app`, half `web`); the other users' share an untagged transaction by
# nine (a transaction has a few entries, as in life: the planner's estimates of a
# transaction's entries are then what they are in production).
SEED = [
    f"""
    INSERT INTO transactions (id, kind, created_at) OVERRIDING SYSTEM VALUE
    SELECT b * 10 + 2, 'deposit', timestamptz '2022-01-01' + b * interval '100 milliseconds'
    FROM generate_series(0::bigint, {TOTAL_ENTRIES} / 10) AS b
    """,
    f"""
    INSERT INTO transactions (id, kind, metadata, created_at) OVERRIDING SYSTEM VALUE
    SELECT n + 1, 'deposit',
           jsonb_build_object('order', ((n / 10) % {ORDERS})::text,
                              'channel', CASE WHEN n % 20 = 0 THEN 'app' ELSE 'web' END),
           timestamptz '2022-01-01' + n * interval '10 milliseconds'
    FROM generate_series(10::bigint, {TOTAL_ENTRIES}, 10) AS n
    """,
    f"""
    INSERT INTO entries (transaction_id, account, kind, user_id, amount, balance_after,
                         created_at)
    SELECT CASE WHEN n % 10 = 0 THEN n + 1 ELSE n - n % 10 + 2 END, 'available', 'deposit',
           CASE WHEN n % 10 = 0 THEN {HOT_USER} ELSE 2 + n % 9999 END,
           1 + (n * 7919) % 100000, n,
           timestamptz '2022-01-01' + n * interval '10 milliseconds'
    FROM generate_series(1::bigint, {TOTAL_ENTRIES}) AS n
    """,
    f"""
    INSERT INTO transaction_tags (user_id, tag, created_at, transaction_id)
    SELECT {HOT_USER}, pair.key || '=' || pair.value, t.created_at, t.id
    FROM transactions AS t, jsonb_each_text(t.metadata) AS pair
    WHERE t.metadata IS NOT NULL
    """,
]


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
    tags = await db.fetchval("SELECT count(*) FROM transaction_tags")
    spread = await db.fetchval("SELECT count(*) FROM transactions") > TOTAL_ENTRIES // 5
    if count != TOTAL_ENTRIES or not tags or not spread:
        started = time.monotonic()
        await db.execute("TRUNCATE entries, transactions, transaction_tags RESTART IDENTITY")
        for statement in SEED:
            await db.execute(statement)
        await db.execute("VACUUM ANALYZE entries, transactions, transaction_tags")
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


async def tag_positions(db: asyncpg.Connection, tag: str, desc: bool) -> dict[str, Any]:
    """Cursor positions in the hot user's entries tagged `tag`."""
    direction = "DESC" if desc else "ASC"
    tagged = await db.fetchval(
        "SELECT count(*) FROM transaction_tags WHERE user_id = $1 AND tag = $2", HOT_USER, tag
    )
    found: dict[str, Any] = {"first page": None}
    for label, offset in [("middle", tagged // 2), ("last page", max(tagged - 50, 0))]:
        row = await db.fetchrow(
            "SELECT e.created_at AS k, e.id FROM transaction_tags g"
            " JOIN entries e ON e.transaction_id = g.transaction_id AND e.user_id = g.user_id"
            f" WHERE g.user_id = $1 AND g.tag = $2 ORDER BY g.created_at {direction},"
            f" g.transaction_id {direction}, e.id {direction} OFFSET $3 LIMIT 1",
            HOT_USER,
            tag,
            offset,
        )
        found[label] = (row["k"].isoformat(), row["id"])
    return found


async def time_page(db: asyncpg.Connection, query: StatementQuery) -> dict[str, float]:
    sql, params = compiled(query)
    statement = await db.prepare(sql)
    server, trip = [], []
    for _ in range(RUNS):
        started = time.perf_counter()
        await statement.fetch(*params)
        trip.append((time.perf_counter() - started) * 1000)
    for _ in range(RUNS // 4):
        plan = await db.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *params)
        server.append(json.loads(plan)[0]["Execution Time"])
    return {
        "server_p50": statistics.median(server),
        "server_p99": statistics.quantiles(server, n=100)[98],
        "trip_p50": statistics.median(trip),
        "trip_p99": statistics.quantiles(trip, n=100)[98],
    }


async def measure(url: str) -> list[dict[str, Any]]:
    db = await asyncpg.connect(url)
    results = []
    for sort in StatementSort:
        for desc in (True, False):
            for label, position in (await positions(db, sort, desc)).items():
                query = build_query(HOT_USER, limit=50, sort=sort, descending=desc)
                if position is not None:
                    query = build_query(HOT_USER, limit=50, cursor=encode_cursor(query, position))
                order = "desc" if desc else "asc"
                timed = await time_page(db, query)
                results.append({"sort": sort.value, "order": order, "depth": label, **timed})
    # Filtered on metadata: a selective tag (an order: ~10 entries), a common one (a
    # channel: 1 in 2), and both pairs, date order.
    for tags, label in [
        ((("order", "4242"),), "metadata.order=4242"),
        ((("channel", "app"),), "metadata.channel=app"),
        ((("channel", "app"), ("order", "4242")), "both"),
    ]:
        for desc in (True, False):
            tag = "=".join(tags[0])
            for depth, position in (await tag_positions(db, tag, desc)).items():
                query = build_query(HOT_USER, limit=50, descending=desc, metadata=tags)
                if position is not None:
                    query = build_query(HOT_USER, limit=50, cursor=encode_cursor(query, position))
                timed = await time_page(db, query)
                order = "desc" if desc else "asc"
                results.append({"sort": f"date, {label}", "order": order, "depth": depth, **timed})
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
