"""Events reach the broker through crashes: 10,000 movements from 32 clients against a
real server, two `balance relay` processes, the one publishing killed -9 twice and the
broker's app stopped and started once in the middle. A consumer gets every event
(repeats allowed, counted), first arrivals in order, each user's balances continuous
and ending where the API says; the pull API tells the same."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.broker import BROKER_URL, Received, consumer, rabbitmqctl, unique_exchange
from tests.events_check import all_sent, kopecks, pulled, story_problems
from tests.servers import ServerProcess, fresh_server

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

BALANCE = Path(sys.executable).with_name("balance")
MOVEMENTS = int(os.environ.get("EVENTS_MOVEMENTS", "10000"))
USERS = 60


class Relays:
    """`balance relay` processes, each in its own process group, output kept."""

    def __init__(self, env: dict[str, str]) -> None:
        self._env = {**os.environ, **env}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.killed = 0

    def start(self) -> None:
        self.processes.append(
            subprocess.Popen(
                [str(BALANCE), "relay"],
                env=self._env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )

    def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)
        self.killed += 1

    def stop(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def relays(env: dict[str, str]) -> Iterator[Relays]:
    found = Relays(env)
    try:
        yield found
    finally:
        found.stop()


async def holder_pid(url: str) -> int | None:
    db = await asyncpg.connect(url)
    try:
        holder = await db.fetchval(
            "SELECT holder FROM event_relay WHERE lease_until > clock_timestamp()"
        )
    finally:
        await db.close()
    return int(holder.rsplit(":", 1)[1]) if holder else None


async def load(base_url: str, clients: int, total: int) -> dict[str, int]:
    """`total` movements (deposits, transfers, withdrawals) from `clients` at once."""
    outcomes: dict[str, int] = {}
    todo = iter(range(total))

    async def client(n: int) -> None:
        rng = random.Random(n)
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as api:
            for i in todo:
                one, other = rng.sample(range(1, USERS + 1), 2)
                kind = rng.random()
                body: dict[str, int | str]
                if kind < 0.4 or i < USERS:
                    user = one if i >= USERS else i + 1
                    path, body = "/v1/deposits", {"user_id": user, "amount": "50.00"}
                elif kind < 0.85:
                    amount = f"{rng.randint(1, 2000) / 100:.2f}"
                    path = "/v1/transfers"
                    body = {"from_user_id": one, "to_user_id": other, "amount": amount}
                else:
                    amount = f"{rng.randint(1, 3000) / 100:.2f}"
                    path, body = "/v1/withdrawals", {"user_id": one, "amount": amount}
                answer = await api.post(path, json=body, headers={"Idempotency-Key": f"e-{i}"})
                key = str(answer.status_code)
                outcomes[key] = outcomes.get(key, 0) + 1

    async with httpx.AsyncClient(base_url=base_url, timeout=60) as api:
        for i in range(USERS):  # every user opened first: no transfer from a user not yet there
            next(todo)
            opened = {"user_id": i + 1, "amount": "50.00"}
            answer = await api.post(
                "/v1/deposits", json=opened, headers={"Idempotency-Key": f"e-{i}"}
            )
            outcomes[str(answer.status_code)] = outcomes.get(str(answer.status_code), 0) + 1
    await asyncio.gather(*(client(n) for n in range(clients)))
    return outcomes


async def faults(url: str, group: Relays, received: Received, done: asyncio.Event) -> list[str]:
    """Kill -9 the relay that publishes, twice (a new one started each time), and stop
    and start the broker's app once, while the load runs."""
    log: list[str] = []
    steps = ["kill", "broker", "kill"]
    while steps and not done.is_set():
        await asyncio.sleep(1.5)
        if not received.messages:
            continue
        step = steps.pop(0)
        if step == "kill":
            pid = await holder_pid(url)
            if pid is None:
                steps.insert(0, step)
                continue
            group.kill(pid)
            group.start()
            log.append(f"kill -9 of relay {pid} at {len(received.messages)} messages")
        else:
            await asyncio.to_thread(rabbitmqctl, "stop_app")
            log.append(f"broker app stopped at {len(received.messages)} messages")
            await asyncio.sleep(2)
            await asyncio.to_thread(rabbitmqctl, "start_app")
            log.append("broker app started")
    return log


@dataclass
class Outcome:
    outcomes: dict[str, int]
    seconds: float
    log: list[str]
    killed: int
    last_id: int
    received: Received
    pulled: list[dict[str, Any]]
    balances: dict[int, tuple[int, int]]


async def scenario(server: ServerProcess, broker: dict[str, str], exchange: str) -> Outcome:
    env = {**broker, "DATABASE_URL": server.database_url, "BALANCE_MIGRATE": "0"}
    env["LOG_LEVEL"] = "WARNING"
    async with consumer(exchange) as received:
        with relays(env) as group:
            group.start()
            group.start()
            done = asyncio.Event()
            injecting = asyncio.create_task(faults(server.database_url, group, received, done))
            started = time.monotonic()
            outcomes = await load(server.base_url, 32, MOVEMENTS)
            seconds = time.monotonic() - started
            done.set()
            log = await injecting
            state = await all_sent(server.database_url, seconds=120)
            await received.until(state[0], seconds=60)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as api:
            events = await pulled(api)
            balances = {}
            for user in range(1, USERS + 1):
                body = (await api.get(f"/v1/users/{user}/balance")).json()
                balances[user] = (kopecks(body["available"]), kopecks(body["reserved"]))
    return Outcome(outcomes, seconds, log, group.killed, state[0], received, events, balances)


# aio-pika's robust connection of the consumer, after the broker restart, leaves a close
# coroutine to the garbage collector: the consumer's, not the service's.
@pytest.mark.filterwarnings("ignore:coroutine 'Connection.close' was never awaited")
def test_every_event_reaches_the_broker_through_relay_and_broker_crashes(pg_server: str) -> None:
    exchange = unique_exchange()
    broker = {"BROKER_URL": BROKER_URL, "BROKER_EXCHANGE": exchange, "RELAY_LEASE_MS": "1500"}
    with fresh_server(pg_server, {**broker, "RELAY": "off"}, workers=2) as server:
        run = asyncio.run(scenario(server, broker, exchange))
    firsts = run.received.first_arrivals()
    repeats = len(run.received.messages) - len(firsts)
    print(
        f"\n{MOVEMENTS} movements in {run.seconds:.1f} s ({run.outcomes}); {run.last_id} events;"
        f" {len(run.received.messages)} deliveries, {repeats} repeats; faults: {run.log}"
    )
    assert sum(run.outcomes.values()) == MOVEMENTS
    assert set(run.outcomes) <= {"201", "409"}, run.outcomes
    assert run.killed == 2, run.log
    assert any("broker app stopped" in line for line in run.log), run.log
    assert sorted(e["event_id"] for e in firsts) == list(range(1, run.last_id + 1))
    for user in range(1, USERS + 1):
        seqs = [e["user_seq"] for e in firsts if e["user_id"] == user]
        assert seqs == list(range(1, len(seqs) + 1)), f"user {user}: first arrivals {seqs[:10]}"
    ordered = sorted(firsts, key=lambda e: e["event_id"])
    assert story_problems(ordered, run.balances) == []
    assert ordered == run.pulled, "the broker and the pull API tell the same story"


def test_serve_starts_a_relay_and_readiness_and_metrics_show_the_outbox(pg_server: str) -> None:
    exchange = unique_exchange()
    env = {"BROKER_URL": BROKER_URL, "BROKER_EXCHANGE": exchange}

    async def check(server: ServerProcess) -> tuple[dict[str, Any], str, list[str]]:
        async with (
            consumer(exchange) as received,
            httpx.AsyncClient(base_url=server.base_url, timeout=10) as api,
        ):
            deadline = time.monotonic() + 30
            while True:
                ready = (await api.get("/health/ready")).json()
                if ready["events"]["broker"] == "connected":
                    break
                assert time.monotonic() < deadline, ready
                await asyncio.sleep(0.2)
            await api.post("/v1/deposits", json={"user_id": 5, "amount": "1.00"})
            await received.until(1, seconds=30)
            await all_sent(server.database_url, seconds=30)
            metrics = (await api.get("/metrics")).text
        return ready, metrics, [m[3] for m in received.messages]

    with fresh_server(pg_server, env, workers=2) as server:
        ready, metrics, keys = asyncio.run(check(server))
    assert ready["status"] == "ready"
    assert ready["events"]["relay"], ready
    assert keys == ["user.5.deposit"]
    assert "balance_events_unsent 0.0" in metrics
    assert "balance_events_oldest_unsent_seconds 0.0" in metrics
    assert "balance_events_published_total 1.0" in metrics
