"""docker-compose.yml, run for real on a Docker engine (`make test-compose`): up with
a build, ready, a keyed deposit and its replay, its event on RabbitMQ, the data
through an app restart, 503 (never 500) while the database is stopped and recovery
when it is back, and nothing left after `down -v`.

Base images come from their registry where it is reachable, else from the CI
stand-ins (deploy/ci/bases/build.sh), built before this runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import httpx
import pytest

from adapters.postgres.audit import CHECKS
from tests.servers import free_port

pytestmark = pytest.mark.compose

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "local-dev-token-change-me"  # the compose file's development token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The project's file, and a slow init script for the database's first start.
FILES = ["-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / "tests/compose/slow-init.yml")]


def compose_command() -> list[str]:
    """BALANCE_COMPOSE (make test-compose runs the tests with 1.29 and with v2), else
    `docker compose` where the plugin is installed, else Debian's docker-compose."""
    given = os.environ.get("BALANCE_COMPOSE")
    if given:
        return given.split()
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if v2.returncode == 0:
        return ["docker", "compose"]
    found = shutil.which("docker-compose")
    assert found is not None, "neither docker compose nor docker-compose is installed"
    return [found]


def is_v2(command: list[str]) -> bool:
    shown = subprocess.run([*command, "version"], capture_output=True, text=True, check=True)
    return " version v2" in shown.stdout or " version 2" in shown.stdout


@dataclass
class Stack:
    project: str
    env: dict[str, str]
    command: list[str]

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.env['BALANCE_HTTP_PORT']}"

    @property
    def broker(self) -> str:
        return f"amqp://balance:balance@127.0.0.1:{self.env['BALANCE_BROKER_PORT']}/%2F"

    def compose(self, *args: str, timeout: float = 600) -> str:
        done = subprocess.run(
            [*self.command, "-p", self.project, *FILES, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    def until_ready(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        last = ""
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"{self.api}/health/ready", timeout=3)
                if ready.status_code == 200:
                    return
                last = ready.text
            except httpx.HTTPError as error:
                last = repr(error)
            time.sleep(0.5)
        logs = self.compose("logs", "--tail=40")
        raise AssertionError(f"not ready in {seconds} s: {last}\n{logs[-5000:]}")

    def leftovers(self) -> list[str]:
        label = f"label=com.docker.compose.project={self.project}"
        found = []
        for kind in (["ps", "-a"], ["network", "ls"], ["volume", "ls"]):
            listed = subprocess.run(
                ["docker", *kind, "-q", "--filter", label],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            found += [f"{kind[0]} {item}" for item in listed]
        return found


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    project = f"balanceci{uuid.uuid4().hex[:8]}"
    ports = {
        "BALANCE_HTTP_PORT": str(free_port()),
        "BALANCE_DB_PORT": str(free_port()),
        "BALANCE_BROKER_PORT": str(free_port()),
    }
    running = Stack(project, {**os.environ, **ports}, compose_command())
    try:
        # v2 waits for every service to be healthy itself (1.29 has no --wait).
        wait = ["--wait"] if is_v2(running.command) else []
        running.compose("up", "-d", "--build", *wait)
        running.until_ready(240)
        initdb = running.compose("logs", "db")
        assert "slow init: 8 s" in initdb, initdb[-2000:]
        yield running
    finally:
        running.compose("down", "-v", "--remove-orphans", "--timeout", "10")
    assert running.leftovers() == [], "down -v left these behind"


def test_a_keyed_deposit_replays_and_its_event_reaches_the_broker(stack: Stack) -> None:
    user = 7001

    async def check() -> tuple[httpx.Response, httpx.Response, dict[str, object], str]:
        connection = await aio_pika.connect(stack.broker)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange("balance.events", ensure=True)
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(exchange, f"user.{user}.#")
            async with httpx.AsyncClient(base_url=stack.api, headers=AUTH, timeout=10) as api:
                body = {"user_id": user, "amount": "150.25", "description": "compose"}
                headers = {"Idempotency-Key": "compose-1"}
                first = await api.post("/v1/deposits", json=body, headers=headers)
                again = await api.post("/v1/deposits", json=body, headers=headers)
            async with asyncio.timeout(30), queue.iterator() as messages:
                async for message in messages:
                    async with message.process():
                        return first, again, json.loads(message.body), message.routing_key or ""
        raise AssertionError("no event")

    first, again, event, routing_key = asyncio.run(check())
    assert first.status_code == 201, first.text
    assert (again.status_code, again.content) == (201, first.content)
    assert routing_key == f"user.{user}.deposit"
    assert (event["type"], event["amount"], event["idempotency_key"]) == (
        "deposit",
        "150.25",
        "compose-1",
    )
    balance = httpx.get(f"{stack.api}/v1/users/{user}/balance", headers=AUTH, timeout=10)
    assert balance.json()["available"] == "150.25"


def test_the_data_outlives_an_app_restart(stack: Stack) -> None:
    user = 7002
    moved = httpx.post(
        f"{stack.api}/v1/deposits", json={"user_id": user, "amount": "5"}, headers=AUTH
    )
    assert moved.status_code == 201, moved.text
    stack.compose("restart", "app")
    stack.until_ready(120)
    balance = httpx.get(f"{stack.api}/v1/users/{user}/balance", headers=AUTH, timeout=10)
    assert balance.json()["available"] == "5.00"


def test_a_stopped_database_is_a_503_never_a_500_and_it_recovers(stack: Stack) -> None:
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=stack.api, headers=AUTH, timeout=15) as api:
            number = 0
            while not stop.is_set():
                number += 1
                key = {"Idempotency-Key": f"compose-load-{number}"}
                try:
                    answer = api.post(
                        "/v1/deposits", json={"user_id": 7003, "amount": "1"}, headers=key
                    )
                    statuses.append(answer.status_code)
                except httpx.HTTPError:
                    statuses.append(0)  # no answer at all: counted, and refused below
                time.sleep(0.05)

    loader = threading.Thread(target=load)
    loader.start()
    try:
        time.sleep(2)
        stack.compose("stop", "db")
        time.sleep(8)
        down = len(statuses)
        stack.compose("start", "db")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and statuses[-1:] != [201]:
            time.sleep(0.5)
    finally:
        stop.set()
        loader.join()
    assert 201 in statuses[:down], statuses
    assert 503 in statuses[:down], statuses
    assert set(statuses) <= {201, 503}, statuses  # never a 500, never a dropped request
    assert statuses[-1] == 201, statuses[-20:]


def test_the_shipped_image_verifies_the_ledger_the_stack_wrote(stack: Stack) -> None:
    """`balance verify` in the app's container, as the service's own least-privileged
    role, after the movements above and the database's stop: every invariant holds
    (compose exits non-zero otherwise, and `compose` asserts it did not)."""
    said = stack.compose("exec", "-T", "app", "balance", "verify")
    assert said.count("\nok      ") == len(CHECKS), said
    assert "BROKEN" not in said, said
