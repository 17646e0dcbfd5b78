"""Revenue CSV for a month holding 1,000,000 recognitions over 1,000 services.

    .venv/bin/python bench/reports.py [--url postgresql://...]

Seeds `balance_bench_reports` (100,000 recognitions first, then 1,000,000), starts
`balance serve` on it, and for each size times GET /v1/reports/revenue/2022-11.csv
(median of 7) and reads the server's RSS after the reads. Drops the database at
the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx

from adapters.postgres.engine import migrate

SERVICES = 1000
NAME = "balance_bench_reports"


def seed_sql(first: int, last: int) -> str:
    # Each recognition: one transaction row and its revenue entry, spread over
    # November 2022 and over the services; 10 entries a month land outside.
    return f"""
    WITH tx AS (
        INSERT INTO transactions (kind, service_id, order_id, created_at)
        SELECT 'recognize', 1 + n % {SERVICES}, n,
               timestamptz '2022-11-01' + (n % 2591999) * interval '1 second'
        FROM generate_series({first}::bigint, {last}) AS n
        RETURNING id, service_id, created_at
    )
    INSERT INTO entries (transaction_id, account, kind, service_id, amount, created_at)
    SELECT id, 'revenue', 'recognize', service_id, 100 + id % 900, created_at FROM tx
    """


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (granian's workers)."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        status = Path(f"/proc/{current}/status").read_text()
        total += int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
        children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        pids += [int(c) for c in children]
    return total / 1024


async def prepare(admin_url: str, url: str) -> None:
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{NAME}"')
    await admin.close()
    await migrate(url)
    db = await asyncpg.connect(url)
    await db.execute(
        f"INSERT INTO services (service_id, name) SELECT n, 'Service ' || n "
        f"FROM generate_series(1, {SERVICES}) n"
    )
    await db.close()


async def grow(url: str, first: int, last: int) -> None:
    db = await asyncpg.connect(url)
    await db.execute(seed_sql(first, last))
    await db.execute("VACUUM ANALYZE entries")
    await db.close()


async def drop(admin_url: str) -> None:
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    url = args.url.rsplit("/", 1)[0] + f"/{NAME}"
    asyncio.run(prepare(args.url, url))
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "PORT": str(port), "WORKERS": "1"}
    balance = Path(sys.executable).with_name("balance")
    server = subprocess.Popen([str(balance), "serve"], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                httpx.get(f"{base}/schema/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        print("| recognitions in the month | CSV rows | median s | max s | server RSS MB |")
        print("|---|---|---|---|---|")
        seeded = 0
        for size in (100_000, 1_000_000):
            asyncio.run(grow(url, seeded + 1, size))
            seeded = size
            times = []
            for _ in range(7):
                started = time.perf_counter()
                response = httpx.get(f"{base}/v1/reports/revenue/2022-11.csv", timeout=60)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200
            rows = response.text.count("\n") - 1
            print(
                f"| {size:,} | {rows} | {statistics.median(times):.3f} | {max(times):.3f} "
                f"| {rss_mb(server.pid):.0f} |"
            )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        asyncio.run(drop(args.url))


if __name__ == "__main__":
    main()
