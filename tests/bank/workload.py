"""The bank workload: many clients moving money among few users while servers die.

In the spirit of Jepsen's bank test. Every request carries an Idempotency-Key and
a client retries timeouts, lost connections and 503s with the same key, on any
live server. Each operation ends in one of three outcomes:

- ``ok``: a 2xx answer, so it must be in the ledger exactly once;
- ``refused``: a 4xx answer, so it must not be in the ledger at all;
- ``unknown``: the client gave up or cut the request off, so at most once.

Operations that carry a description write ``bank <key>`` into it, which lets the
checks find each one in the ledger without trusting the idempotency table.

A share of the clients' turns sends 2..6 operations as one `POST /v1/batches`
(atomic or not, under a batch key, each operation under its own key), retried
like a single request; each operation then has the outcome its result says.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import signal
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg
import httpx

from tests.servers import ServerProcess

Outcome = Literal["ok", "refused", "unknown"]
KINDS = ("deposit", "withdrawal", "transfer", "reserve", "recognize", "cancel")
CALLER = "bank"
TOKENS = ("bank-token-0123456789abcdef", "bank-rotated-token-0123456789")
"""The bank's two tokens, one caller in the middle of a rotation: each attempt of a
request goes with either, so a retry often comes through the other token, and must
still replay (README, decision 53)."""
SERVER_ENV = {"BALANCE_API_TOKENS": ",".join(f"{t}=read+write@{CALLER}" for t in TOKENS)}
"""What each server of the bank runs with."""


def bearer(token: str = TOKENS[0]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


WEIGHTS = (20, 15, 25, 20, 10, 10)
RETRYABLE_PROBLEMS = ("/problems/unavailable", "/problems/request-in-progress")


@dataclass
class Operation:
    kind: str
    key: str
    path: str
    body: dict[str, Any]
    outcome: Outcome = "unknown"
    status: int | None = None
    response: dict[str, Any] | None = None
    attempts: int = 0
    cut_off: bool = False
    answered_at: float | None = None  # time.monotonic() of the definite answer
    own_answer: bool = True
    """Whether `response` is what its key was answered: not when an atomic batch's
    refusal answered it (its key holds its own refusal, or `refused-with-batch`)."""
    sent_at: float = field(default_factory=time.monotonic)

    @property
    def description(self) -> str | None:
        return self.body.get("description")

    @property
    def order_id(self) -> int | None:
        if self.kind == "reserve":
            return int(self.body["order_id"])
        if self.kind in ("recognize", "cancel"):
            return int(self.path.split("/")[3])
        return None


@dataclass
class Settings:
    seconds: float = 45
    clients: int = 32
    users: int = 8
    services: int = 3
    fault_every: float = 4.0
    cut_off_share: float = 0.03
    batch_share: float = 0.25
    request_timeout: float = 10
    give_up_after: float = 30
    seed: int | None = None


@dataclass
class Run:
    """What happened: every operation, the faults, and counters for the summary."""

    operations: list[Operation] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    anomalies: list[str] = field(default_factory=list)
    batches: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def outcomes(self) -> Counter[str]:
        return Counter(op.outcome for op in self.operations)

    def recovered(self, since: float) -> float:
        """From `since` (time.monotonic()) to the first acknowledged movement sent after
        it; inf if none was."""
        after = [
            op.answered_at
            for op in self.operations
            if op.outcome == "ok" and op.answered_at and op.sent_at > since
        ]
        return min(after, default=math.inf) - since


class Bank:
    def __init__(self, settings: Settings, servers: list[ServerProcess], database_url: str) -> None:
        self.settings = settings
        self.servers = servers
        self.database_url = database_url
        self.run = Run()
        self.random = random.Random(settings.seed)
        # Orders live far apart per run, so a rerun on the same database never collides.
        self._next_order = self.random.randrange(1, 2**40) * 1000
        self._orders: list[Operation] = []
        self._stopped = asyncio.Event()

    # -- the run ---------------------------------------------------------------

    async def execute(self) -> Run:
        started = time.monotonic()
        deadline = started + self.settings.seconds
        async with httpx.AsyncClient(
            timeout=self.settings.request_timeout,
            limits=httpx.Limits(max_connections=self.settings.clients * 2),
        ) as http:
            faults = asyncio.create_task(self._inject_faults(deadline))
            clients = [
                asyncio.create_task(self._client(http, deadline))
                for _ in range(self.settings.clients)
            ]
            await asyncio.gather(*clients)
            self._stopped.set()
            await faults
        self.run.seconds = time.monotonic() - started
        return self.run

    async def _client(self, http: httpx.AsyncClient, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.random.random() < self.settings.batch_share:
                operations = [self._next_operation() for _ in range(self.random.randint(2, 6))]
                self.run.operations.extend(operations)
                await self._send_batch(http, operations, atomic=self.random.random() < 0.5)
                continue
            operation = self._next_operation()
            self.run.operations.append(operation)
            if self.random.random() < self.settings.cut_off_share:
                await self._cut_off(operation)
                if self.random.random() < 0.5:
                    continue  # abandoned: at most once
            await self._send(http, operation)

    def _next_operation(self) -> Operation:
        r = self.random
        kind = r.choices(KINDS, WEIGHTS)[0]
        key = f"bank-{uuid.uuid4()}"
        user = r.randint(1, self.settings.users)
        amount = f"{r.randint(1, 5000) / 100:.2f}"
        description = f"bank {key}"
        if kind in ("recognize", "cancel") and self._orders:
            order = r.choice(self._orders)
            body = {"user_id": order.body["user_id"], "service_id": order.body["service_id"]}
            if kind == "recognize":
                reserved = int(order.body["amount"].replace(".", ""))
                # Mostly a valid amount, sometimes one above the reservation.
                body["amount"] = f"{r.randint(1, reserved + reserved // 10 + 1) / 100:.2f}"
            path = f"/v1/reservations/{order.body['order_id']}/{kind}"
            return Operation(kind, key, path, body)
        if kind in ("recognize", "cancel", "reserve"):
            self._next_order += 1
            body = {
                "user_id": user,
                "service_id": r.randint(1, self.settings.services),
                "order_id": self._next_order,
                "amount": amount,
                "description": description,
            }
            operation = Operation("reserve", key, "/v1/reservations", body)
            self._orders.append(operation)
            return operation
        if kind == "deposit":
            body = {"user_id": user, "amount": f"{r.randint(1, 20000) / 100:.2f}"}
            return Operation(kind, key, "/v1/deposits", body | {"description": description})
        if kind == "withdrawal":
            body = {"user_id": user, "amount": amount, "description": description}
            return Operation(kind, key, "/v1/withdrawals", body)
        other = r.choice([u for u in range(1, self.settings.users + 1) if u != user])
        body = {"from_user_id": user, "to_user_id": other, "amount": amount}
        if r.random() < 0.5:  # tagged: `balance verify` checks the metadata filter's index
            body["metadata"] = {"bank": "transfer", "desk": str(r.randint(1, 3))}
        return Operation(kind, key, "/v1/transfers", body | {"description": description})

    def _server(self) -> ServerProcess:
        return self.random.choice(self.servers)

    def _bearer(self) -> dict[str, str]:
        return bearer(self.random.choice(TOKENS))

    async def _send(self, http: httpx.AsyncClient, operation: Operation) -> None:
        """Send until a definite answer or give_up_after; the same key every time."""
        give_up = time.monotonic() + self.settings.give_up_after
        while True:
            operation.attempts += 1
            reason = None
            try:
                response = await http.post(
                    f"{self._server().base_url}{operation.path}",
                    json=operation.body,
                    headers={"Idempotency-Key": operation.key, **self._bearer()},
                )
            except httpx.TimeoutException:
                reason = "timeout"
            except httpx.TransportError:
                reason = "connection"
            else:
                if self._settles(operation, response):
                    return
                reason = f"http {response.status_code}"
            self.run.retries[reason] += 1
            if time.monotonic() > give_up:
                return  # outcome stays unknown
            await asyncio.sleep(0.05 + self.random.random() * 0.2)

    async def _send_batch(
        self, http: httpx.AsyncClient, operations: list[Operation], atomic: bool
    ) -> None:
        """One batch until a definite answer or give_up_after, under one batch key."""
        self.run.batches["atomic" if atomic else "not atomic"] += 1
        body = {"atomic": atomic, "operations": [_batched(op) for op in operations]}
        key = f"bank-batch-{uuid.uuid4()}"
        give_up = time.monotonic() + self.settings.give_up_after
        while True:
            reason = None
            for operation in operations:
                operation.attempts += 1
            try:
                response = await http.post(
                    f"{self._server().base_url}/v1/batches",
                    json=body,
                    headers={"Idempotency-Key": key, **self._bearer()},
                )
            except httpx.TimeoutException:
                reason = "timeout"
            except httpx.TransportError:
                reason = "connection"
            else:
                if self._batch_settles(operations, response):
                    return
                reason = f"http {response.status_code}"
            self.run.retries[reason] += 1
            if time.monotonic() > give_up:
                return  # every outcome stays unknown
            await asyncio.sleep(0.05 + self.random.random() * 0.2)

    def _batch_settles(self, operations: list[Operation], response: httpx.Response) -> bool:
        status = response.status_code
        if status != 200:  # an atomic batch's refusal, or the whole batch failed
            if not all(self._settles(op, response) for op in operations):
                return False
            for operation in operations:
                operation.own_answer = False
            return True
        results = response.json()["results"]
        for operation, result in zip(operations, results, strict=True):
            if result["status"] >= 500:
                self.run.anomalies.append(f"{result['status']} inside a batch: {result}")
            operation.status = result["status"]
            operation.response = result["body"]
            operation.outcome = "ok" if result["status"] < 300 else "refused"
            operation.answered_at = time.monotonic()
        return True

    def _settles(self, operation: Operation, response: httpx.Response) -> bool:
        status = response.status_code
        body = response.json() if response.content else {}
        if status >= 500:
            if status != 503:
                self.run.anomalies.append(f"{status} for {operation.key}: {response.text}")
            return False
        if status == 409 and body.get("type") in RETRYABLE_PROBLEMS:
            return False
        if status == 422 and body.get("type") == "/problems/idempotency-key-reused":
            self.run.anomalies.append(f"key reuse reported for {operation.key}")
        operation.status = status
        operation.response = body
        operation.outcome = "ok" if status < 300 else "refused"
        operation.answered_at = time.monotonic()
        return True

    async def _cut_off(self, operation: Operation) -> None:
        """Send the whole request, then hang up before any answer."""
        operation.cut_off = True
        server = self._server()
        payload = json.dumps(operation.body).encode()
        head = (
            f"POST {operation.path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: application/json\r\nIdempotency-Key: {operation.key}\r\n"
            f"Authorization: Bearer {self.random.choice(TOKENS)}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        except OSError:
            return
        try:
            writer.write(head + payload)
            await writer.drain()
            await asyncio.sleep(self.random.random() * 0.005)
        except OSError:
            pass
        finally:
            writer.transport.abort()
        self.run.faults["request cut off after sending"] += 1

    # -- faults ----------------------------------------------------------------

    async def _inject_faults(self, deadline: float) -> None:
        faults = (
            self._kill_worker,
            self._kill_server,
            self._terminate_backends,
            self._cancel_statements,
        )
        turn = 0
        while True:
            await self._sleep_until(min(deadline, time.monotonic() + self.settings.fault_every))
            if self._stopped.is_set() or time.monotonic() >= deadline:
                break
            await faults[turn % len(faults)]()
            turn += 1
        for server in self.servers:  # the checks read through the API
            if not server.running():
                await asyncio.to_thread(server.start)

    async def _sleep_until(self, moment: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), max(0.0, moment - time.monotonic()))

    async def _kill_worker(self) -> None:
        """kill -9 one granian worker; granian respawns it."""
        server = self.servers[0]
        workers = server.workers_pids()
        if workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.random.choice(workers), signal.SIGKILL)
            self.run.faults["kill -9 of a worker"] += 1

    async def _kill_server(self) -> None:
        """kill -9 a whole server (main process and workers), then start it again."""
        server = self.servers[-1]
        server.kill()
        self.run.faults["kill -9 of a server, restarted"] += 1
        await asyncio.sleep(0.5)
        await asyncio.to_thread(server.start)

    async def _terminate_backends(self) -> None:
        """pg_terminate_backend every connection the service holds."""
        db = await asyncpg.connect(self.database_url)
        try:
            killed = await db.fetchval(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND application_name = 'balance') AS t"
            )
        finally:
            await db.close()
        self.run.faults["pg_terminate_backend of the service's connections"] += 1
        self.run.faults["connections terminated"] += int(killed)

    async def _cancel_statements(self, seconds: float = 1.0) -> None:
        """pg_cancel_backend of every statement the service runs, again and again for
        a second (a batch's statements take milliseconds): SQLSTATE 57014, as from an
        operator or a `statement_timeout`, the server's doing and no request's."""
        db = await asyncpg.connect(self.database_url)
        cancelled = 0
        try:
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                cancelled += await db.fetchval(
                    "SELECT count(*) FROM (SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND application_name = 'balance' AND state = 'active') AS t"
                )
                await asyncio.sleep(0.01)
        finally:
            await db.close()
        self.run.faults["pg_cancel_backend of the service's statements"] += 1
        self.run.faults["statements cancelled"] += int(cancelled)


def _batched(operation: Operation) -> dict[str, Any]:
    """The operation as a line of a batch: its single body, its op and its key."""
    line = {"op": operation.kind, **operation.body, "idempotency_key": operation.key}
    if operation.kind in ("recognize", "cancel"):
        line["order_id"] = operation.order_id
    return line
