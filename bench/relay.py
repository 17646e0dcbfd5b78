"""The relay: events a second to RabbitMQ with publisher confirms, and how far events lag
behind under the reserve load.

1. Drain, once a round: 200,000 events seeded into the outbox, one relay (this
   process) publishes them to a topic exchange with one durable queue bound (so the
   broker writes every message, as in production) and marks them sent: events a
   second, and the relay's CPU per 1,000 events.
2. Lag: `balance serve` (2 workers, the relay beside them) under wrk's reserve load
   (64 connections, 10 s), from when the relay holds its lease, the age of the
   oldest unsent event sampled every 100 ms: p50, p99, max; the same load without a
   broker, for the throughput it costs.

    .venv/bin/python -m bench.relay --url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid

import aio_pika
import asyncpg

from adapters.amqp.publisher import AmqpPublisher
from adapters.postgres.engine import create_engine
from adapters.postgres.events import PostgresOutbox
from application.relay import Relay, RelaySettings
from bench.run import need, prepare, run_wrk
from tests.servers import ServerProcess

BROKER = "amqp://guest:guest@127.0.0.1:5672/%2F"
SEEDED = 200_000
USERS = 10_000


async def bound_queue(exchange: str) -> tuple[aio_pika.abc.AbstractRobustConnection, str]:
    connection = await aio_pika.connect_robust(BROKER)
    channel = await connection.channel()
    topic = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(f"{exchange}.bench", durable=True)
    await queue.bind(topic, "#")
    return connection, queue.name


async def drop(connection: aio_pika.abc.AbstractRobustConnection, exchange: str) -> None:
    channel = await connection.channel()
    await channel.queue_delete(f"{exchange}.bench")
    await channel.exchange_delete(exchange)
    await connection.close()


async def drain(url: str) -> dict[str, float]:
    db = await asyncpg.connect(url)
    try:  # a fresh outbox each drain
        await db.execute("TRUNCATE events")
        await db.execute("UPDATE event_relay SET sent_upto = 0")
        await db.execute(
            """
            INSERT INTO events (event_id, user_id, user_seq, type, transaction_id, amount,
                                available_delta, reserved_delta, available, reserved,
                                idempotency_key, created_at)
            SELECT n, 1 + (n - 1) % $2, 1 + (n - 1) / $2, 'deposit', NULL, 100, 100, 0,
                   100 * (1 + (n - 1) / $2), 0, 'bench-' || n, clock_timestamp()
            FROM generate_series(1, $1::bigint) AS n
            """,
            SEEDED,
            USERS,
        )
        await db.execute("UPDATE event_counter SET last_id = $1", SEEDED)
        await db.execute("UPDATE accounts SET event_seq = 1 + ($1 - 1) / $2", SEEDED, USERS)
        await db.execute("VACUUM ANALYZE events")
    finally:
        await db.close()
    exchange = f"balance.events.bench-{uuid.uuid4().hex[:8]}"
    connection, _ = await bound_queue(exchange)
    engine = create_engine(url, pool_size=2)
    stop = asyncio.Event()
    relay = Relay(lambda: PostgresOutbox(engine), AmqpPublisher(BROKER, exchange), None,
                  RelaySettings(), holder="bench")  # fmt: skip
    started, cpu = time.monotonic(), time.process_time()
    task = asyncio.create_task(relay.run(stop))
    try:
        while True:
            async with PostgresOutbox(engine) as outbox:
                state = await outbox.state()
            if state.unsent == 0:
                break
            await asyncio.sleep(0.05)
        seconds, cpu_seconds = time.monotonic() - started, time.process_time() - cpu
    finally:
        stop.set()
        await task
        await engine.dispose()
        await drop(connection, exchange)
    return {
        "events": SEEDED,
        "seconds": seconds,
        "per_second": SEEDED / seconds,
        "cpu_ms_per_1000": 1000 * cpu_seconds / (SEEDED / 1000),
    }


async def sample_lag(url: str, until: asyncio.Event) -> list[float]:
    db = await asyncpg.connect(url)
    ages = []
    try:
        while not until.is_set():
            age = await db.fetchval(
                "SELECT coalesce(extract(epoch FROM clock_timestamp() - (SELECT created_at"
                " FROM events WHERE event_id = r.sent_upto + 1)), 0) FROM event_relay AS r"
            )
            ages.append(float(age))
            await asyncio.sleep(0.1)
    finally:
        await db.close()
    return ages


async def relay_ready(url: str) -> None:
    """Until the server's relay holds the lease, connected to the broker (at most 30 s)."""
    db = await asyncpg.connect(url)
    try:
        for _ in range(600):
            if await db.fetchval("SELECT broker = 'connected' FROM event_relay"):
                return
            await asyncio.sleep(0.05)
    finally:
        await db.close()
    raise RuntimeError("the relay did not connect within 30 s")


async def lag(url: str, args: argparse.Namespace, relay: bool) -> dict[str, float]:
    db = await asyncpg.connect(url)
    try:  # what earlier runs left unsent (with no broker) is not this run's lag
        await db.execute("UPDATE event_relay SET sent_upto = (SELECT last_id FROM event_counter)")
    finally:
        await db.close()
    exchange = f"balance.events.bench-{uuid.uuid4().hex[:8]}"
    connection, _ = await bound_queue(exchange)
    env = {"DATABASE_URL": url, "DB_POOL_SIZE": "4", "LOG_LEVEL": "WARNING"}
    if relay:
        env |= {"BROKER_URL": BROKER, "BROKER_EXCHANGE": exchange}
    server = ServerProcess(env, workers=2, port=args.port)
    server.start()
    try:
        if relay:  # the lag under load, not the relay's start-up: wait for its lease
            await relay_ready(url)
        else:
            await asyncio.sleep(1)
        done = asyncio.Event()
        sampling = asyncio.create_task(sample_lag(url, done))
        rps, _, p99, errors = await asyncio.to_thread(run_wrk, args.port, "reserve", args)
        done.set()
        ages = await sampling
    finally:
        server.stop()
        await drop(connection, exchange)
    found = {"reserves_per_second": rps, "p99_ms": p99, "errors": errors}
    if relay:
        found |= {
            "lag_p50_s": statistics.median(ages),
            "lag_p99_s": statistics.quantiles(ages, n=100)[98],
            "lag_max_s": max(ages),
        }
    return found


async def main(args: argparse.Namespace) -> None:
    url = await prepare(args.url, USERS)
    for round_ in range(0 if args.lag_only else args.rounds):
        print(f"drain {round_ + 1}:", await drain(url), flush=True)
    for round_ in range(args.rounds):
        print(f"round {round_ + 1} relay:", await lag(url, args, relay=True), flush=True)
        print(f"round {round_ + 1} no broker:", await lag(url, args, relay=False), flush=True)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--port", type=int, default=8098)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lag-only", action="store_true", help="skip the drain")
    return parser.parse_args()


if __name__ == "__main__":
    need("wrk")  # the lag's load; the drain, which needs none, would run first
    asyncio.run(main(arguments()))
    sys.exit(0)
