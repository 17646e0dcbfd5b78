"""A payout file of 1,000,000 deposits sent as batches of 1,000 through the typed
client (clients/python), 4 batches in flight: total time, and the largest worker's
RSS every 100 batches (it must stay flat).

    .venv/bin/python -m bench.payout --url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import httpx
from balance_client import AuthenticatedClient
from balance_client.api.money import create_batch
from balance_client.models import BatchRequest, BatchResponse, DepositOperation

from bench.run import BENCH_DB, prepare, worker_rss_mb
from tests.servers import ServerProcess


def lines(file: int, first: int, count: int, users: int) -> list[Any]:
    return [
        DepositOperation(
            op="deposit",
            user_id=1 + (first + n) % users,
            amount="1.00",
            description=f"payout file {file} line {first + n}",
            idempotency_key=f"payout-{file}-{first + n}",
        )
        for n in range(count)
    ]


async def send(client: AuthenticatedClient, file: int, batch: int, size: int, users: int) -> None:
    body = BatchRequest(operations=lines(file, batch * size, size, users))
    answer = await create_batch.asyncio(client=client, body=body)
    if not isinstance(answer, BatchResponse) or any(r.status != 201 for r in answer.results):
        raise RuntimeError(f"batch {batch} was not applied whole: {answer}")


async def payout(server: ServerProcess, args: argparse.Namespace) -> tuple[float, list[float]]:
    batches = args.lines // args.size
    rss: list[float] = []
    file = int(time.time())
    started = time.monotonic()
    # The client is generated from the document served with tokens configured, so
    # its operations take an authenticated client; the bench's server has no tokens
    # and reads no Authorization header.
    client = AuthenticatedClient(base_url=server.base_url, token="none", timeout=httpx.Timeout(120))
    async with client:
        for start in range(0, batches, args.in_flight):
            wave = range(start, min(start + args.in_flight, batches))
            await asyncio.gather(*(send(client, file, b, args.size, args.users) for b in wave))
            if (start // args.in_flight) % max(1, 100 // args.in_flight) == 0:
                rss.append(worker_rss_mb(server))
    return time.monotonic() - started, rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    url = asyncio.run(prepare(args.url, args.users))
    server = ServerProcess({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"}, workers=args.workers)
    server.start()
    try:
        seconds, rss = asyncio.run(payout(server, args))
    finally:
        server.stop()
    print(
        f"payout file: {args.lines:,} deposits in batches of {args.size:,}"
        f" ({args.in_flight} in flight, {args.workers} workers) on {BENCH_DB}:"
        f" {seconds:.1f} s, {args.lines / seconds:,.0f} deposits/s;"
        f" largest worker RSS every 100 batches, MB: {', '.join(f'{r:.0f}' for r in rss)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
