"""The app's own CPU per money movement, without an HTTP server or a load generator.

wrk against a server shares two cores with PostgreSQL and itself, so its
throughput moves by a third from run to run. This drives the ASGI app in-process
(concurrent deposits with keys, on a seeded PostgreSQL) and reads this process's
CPU time, which is steadier: it tells whether a change to the request path made
the Python side cheaper. Modes: `hot` (the app as served) and `litestar` (every
request through Litestar, as before the hot path).

    .venv/bin/python -m bench.app_cpu --url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import random
import statistics
import sys
import time
from typing import Any

from bench.run import prepare
from entrypoints.container import Container, build_app, build_container
from entrypoints.http.app import create_litestar
from entrypoints.http.controllers import Services
from entrypoints.http.observe import observe
from entrypoints.settings import Settings


def app_for(mode: str, settings: Settings, container: Container) -> Any:
    if mode == "hot":
        return build_app(settings, container)

    def services() -> Services:
        return container.services()

    return observe(None)(create_litestar(services))


async def deposits(app: Any, count: int, users: int, keys: itertools.count[int]) -> None:
    for _ in range(count):
        body = b'{"user_id":%d,"amount":"1.00"}' % random.randint(1, users)
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        answered: list[int] = []

        async def receive(messages: list[Any] = messages) -> Any:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: Any, answered: list[int] = answered) -> None:
            if message["type"] == "http.response.start":
                answered.append(message["status"])

        key = b"app-cpu-%d-%d" % (os.getpid(), next(keys))
        headers = [(b"content-type", b"application/json"), (b"idempotency-key", key)]
        scope = {"type": "http", "method": "POST", "path": "/v1/deposits", "headers": headers}
        await app(scope, receive, send)
        if answered != [201]:
            raise RuntimeError(f"deposit answered {answered}")


async def measure(
    mode: str, url: str, args: argparse.Namespace, keys: itertools.count[int]
) -> float:
    settings = Settings.from_env({"DATABASE_URL": url, "DB_POOL_SIZE": str(args.pool)})
    container = build_container(settings)
    app = app_for(mode, settings, container)
    try:
        await asyncio.gather(*(deposits(app, 20, args.users, keys) for _ in range(args.clients)))
        started = time.process_time()
        each = args.requests // args.clients
        await asyncio.gather(*(deposits(app, each, args.users, keys) for _ in range(args.clients)))
        return float(1000 * (time.process_time() - started) / (each * args.clients))
    finally:
        await container.postgres.engine().dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--pool", type=int, default=4)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the access log is measured by bench.run, not here
    url = asyncio.run(prepare(args.url, args.users))
    figures: dict[str, list[float]] = {"litestar": [], "hot": []}
    keys = itertools.count()  # every deposit its own Idempotency-Key
    for _ in range(args.rounds):
        for mode, found in figures.items():
            found.append(asyncio.run(measure(mode, url, args, keys)))
    for mode, found in figures.items():
        listed = ", ".join(f"{f:.3f}" for f in found)
        print(f"{mode}: {statistics.median(found):.3f} ms CPU a deposit (runs: {listed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
