"""Run by `bench/opcodes.py` with a tree's own interpreter, in that tree's folder: the
tree's ASGI app in process on PostgreSQL (on uvloop where the tree has it, as its
workers run; a tree from before uvloop on asyncio's own loop, as it ran), 16 callers
in step, each money request under its own Idempotency-Key as wrk's are; after a
warm-up, Python's opcodes counted by function while `requests` requests are answered.

    python bench/opcodes_driver.py DATABASE_URL deposit|reserve|live REQUESTS OUT.json

Trees from 3cb6e41 on build their app this way (`build_container`, `build_app`). No
timing: a count does not depend on the machine's load.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import Any

from entrypoints.container import build_app, build_container
from entrypoints.settings import Settings

CALLERS = 16
WARM_UP = 8  # requests a caller, not counted: prepared statements, caches
USERS = 10_000

Tracer = Callable[[FrameType, str, Any], Any]


class Opcodes:
    """A `sys.settrace` tracer that counts the opcodes each function executes (this
    driver's own left out)."""

    def __init__(self, root: str) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self._root = root

    def _name(self, frame: FrameType) -> str:
        file = frame.f_code.co_filename
        file = file.split("site-packages/")[-1].removeprefix(self._root)
        return f"{file}:{frame.f_code.co_name}"

    def __call__(self, frame: FrameType, _event: str, _arg: Any) -> Tracer | None:
        if frame.f_code.co_filename == __file__:
            return None  # the driver's own work is not the service's
        frame.f_trace_opcodes = True
        name = self._name(frame)
        counts = self.counts

        def local(_frame: FrameType, event: str, _arg: Any) -> Tracer:
            if event == "opcode":
                counts[name] += 1
            return local

        return local


class Driver:
    """Callers in step on the app, each request the scenario's."""

    def __init__(self, url: str, scenario: str) -> None:
        settings = Settings.from_env(
            {
                "DATABASE_URL": url,
                "LOG_LEVEL": "WARNING",
                "BALANCE_MIGRATE": "0",
                "DB_POOL_SIZE": "4",
                "EXPIRY_SWEEP_MS": "0",
            }
        )
        # Spoken to in plain ASGI dicts, as a server does: not Litestar's typed events.
        self.app: Any = build_app(settings, build_container(settings))
        self.scenario = scenario
        self._rng = random.Random(1)
        self._prefix = os.urandom(4).hex()
        self._sent = 0
        self._order = self._rng.randrange(1, 2**40) * 1000

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        headers = [(b"host", b"bench")]
        raw = b""
        if body is not None:
            raw = json.dumps(body).encode()
            self._sent += 1
            key = f"{self._prefix}-{self._sent}".encode()
            headers += [(b"content-type", b"application/json"), (b"idempotency-key", key)]
            headers.append((b"content-length", str(len(raw)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        given = False
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            nonlocal given
            if given:
                await asyncio.Event().wait()  # the client stays: no disconnect
            given = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await self.app(scope, receive, send)
        if status[0] not in (200, 201):
            sys.exit(f"opcodes: {method} {path} answered {status[0]}")

    def request(self) -> Awaitable[None]:
        if self.scenario == "live":
            return self.call("GET", "/health/live")
        user = self._rng.randrange(1, USERS + 1)
        if self.scenario == "deposit":
            return self.call("POST", "/v1/deposits", {"user_id": user, "amount": "0.01"})
        self._order += 1
        reserve = {"user_id": user, "service_id": 7, "order_id": self._order, "amount": "0.01"}
        return self.call("POST", "/v1/reservations", reserve)

    async def callers(self, each: int) -> None:
        async def caller() -> None:
            for _ in range(each):
                await self.request()

        await asyncio.gather(*(caller() for _ in range(CALLERS)))

    async def count(self, requests: int) -> collections.Counter[str]:
        """The opcodes of `requests` requests, after the warm-up, the app started and
        stopped around them as a worker does."""
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})
        lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}}
        life = asyncio.create_task(self.app(lifespan, inbox.get, outbox.put))
        if (await outbox.get())["type"] != "lifespan.startup.complete":
            sys.exit("opcodes: the app did not start")
        await self.callers(WARM_UP)
        opcodes = Opcodes(f"{Path.cwd()}/")
        sys.settrace(opcodes)
        await self.callers(requests // CALLERS)
        sys.settrace(None)
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await life
        return opcodes.counts


def main() -> None:
    url, scenario, requests, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    try:
        import uvloop  # noqa: PLC0415  (a tree from before it runs without)
    except ImportError:
        counts = asyncio.run(Driver(url, scenario).count(requests))
    else:
        counts = uvloop.run(Driver(url, scenario).count(requests))
    Path(out).write_text(json.dumps(counts))


if __name__ == "__main__":
    main()
