"""The real server process (`balance serve`), driven over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from adapters.postgres.revisions import head_revision
from tests import postgres
from tests.servers import BALANCE, ServerProcess, free_port

pytestmark = pytest.mark.postgres


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Where an embedded server keeps its data (tests/postgres.py: embedded_data)."""
    with postgres.embedded_data() as data:
        yield data


@contextmanager
def server(env: dict[str, str], workers: int = 2) -> Iterator[httpx.Client]:
    process = ServerProcess(env, workers)
    process.start()
    try:
        with httpx.Client(base_url=process.base_url, timeout=10) as client:
            yield client
    finally:
        process.stop()


def test_serves_money_movements_on_an_empty_database(database: str) -> None:
    with server({"DATABASE_URL": database}) as api:
        deposit = api.post("/v1/deposits", json={"user_id": 1, "amount": "100.00"})
        assert deposit.status_code == 201, deposit.text
        order = {"user_id": 1, "service_id": 2, "order_id": 3, "amount": "40"}
        assert api.post("/v1/reservations", json=order).status_code == 201
        recognized = api.post(
            "/v1/reservations/3/recognize", json={"user_id": 1, "service_id": 2, "amount": "25"}
        )
        assert recognized.status_code == 200, recognized.text
        transfer = api.post(
            "/v1/transfers", json={"from_user_id": 1, "to_user_id": 2, "amount": "5"}
        )
        assert transfer.status_code == 201
        assert api.get("/v1/users/1/balance").json()["available"] == "70.00"
        refused = api.post("/v1/withdrawals", json={"user_id": 1, "amount": "70.01"})
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"


def test_embedded_default_keeps_data_across_restarts(data_dir: Path) -> None:
    env = {"BALANCE_DATA_DIR": str(data_dir)}
    process = ServerProcess(env, workers=1)
    process.start()
    try:
        with httpx.Client(base_url=process.base_url, timeout=10) as api:
            moved = api.post("/v1/deposits", json={"user_id": 9, "amount": "12.34"})
            assert moved.status_code == 201
    finally:
        process.stop()
    assert not (data_dir / "postmaster.pid").exists(), "SIGTERM left PostgreSQL running"
    # A quiet first start: one line for the embedded server, none of initdb's or
    # pg_ctl's output, and every line one JSON object.
    lines = process.output().splitlines()
    assert [json.loads(line)["logger"] for line in lines].count("balance.embedded") == 1, lines
    said = "\n".join(lines)
    for noise in ("Running commandline", "remaining", "initdb", "pg_ctl", "1 workers"):
        assert noise not in said, noise
    with server(env, workers=1) as api:
        assert api.get("/v1/users/9/balance").json()["available"] == "12.34"


def test_the_embedded_server_is_stopped_again_after_a_serve_was_killed(data_dir: Path) -> None:
    """`make run` killed with -9 (its terminal closed, the OOM killer) leaves its
    embedded PostgreSQL running, and the next `make run` uses it: that one's SIGTERM
    stops it, as if it had started it. The wheel counted the killed process as a user
    of the server for ever, and left the server running after every later stop."""
    env = {"BALANCE_DATA_DIR": str(data_dir)}
    killed = ServerProcess(env, workers=1)
    killed.start()
    pid_file = data_dir / "postmaster.pid"
    postmaster = int(pid_file.read_text().split()[0])
    workers = killed.workers_pids()
    os.kill(killed.pid, 9)  # the main process only: PostgreSQL runs on, orphaned
    killed.wait(10)
    for worker in workers:  # granian's worker too (it would run on, serving nothing)
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, 9)
    os.kill(postmaster, 0)  # still running
    try:
        with server(env, workers=1) as api:
            assert api.get("/health/ready").status_code == 200
            assert int(pid_file.read_text().split()[0]) == postmaster  # the same server
        assert not pid_file.exists(), "SIGTERM left PostgreSQL running"
        deadline = time.monotonic() + 10  # reaped by init, an orphan's parent, soon
        while Path(f"/proc/{postmaster}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{postmaster}").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(postmaster, 9)


def test_a_second_server_on_a_port_in_use_refuses_to_start(tmp_path: Path) -> None:
    """Granian binds with SO_REUSEPORT: a second `balance serve` on a port one serves
    started without a word and took half its requests (an old build left running
    answers beside the new one). It is refused at once, in a line, before the
    embedded database is started."""
    first = ServerProcess({"BALANCE_STORE": "memory"}, workers=1)
    first.start()
    try:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        data = tmp_path / "pg"
        second = subprocess.run(
            [str(BALANCE), "serve"],
            env={**env, "PORT": str(first.port), "BALANCE_DATA_DIR": str(data)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert second.returncode == 2, second.stderr
        assert second.stderr == (
            f"balance: cannot serve on 127.0.0.1:{first.port}: the port is in use"
            " (another balance serve, or another program); set PORT\n"
        )
        assert not data.exists()  # no database was started for it
        assert httpx.get(f"{first.base_url}/health/live").status_code == 200
    finally:
        first.stop()


def test_report_on_the_embedded_default_writes_the_csv_and_nothing_else(
    data_dir: Path,
) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "LOG_LEVEL")}
    environment["BALANCE_DATA_DIR"] = str(data_dir)
    done = subprocess.run(
        [str(BALANCE), "report", "2022-11"], env=environment, capture_output=True, check=True
    )
    assert (done.stdout, done.stderr) == (b"service name;total\r\n", b"")


def test_report_command_prints_the_csv(database: str) -> None:
    environment = {**os.environ, "DATABASE_URL": database}
    done = subprocess.run(
        [str(BALANCE), "report", "2022-11"], env=environment, capture_output=True, check=True
    )
    assert done.stdout == b"service name;total\r\n"
    bad = subprocess.run(
        [str(BALANCE), "report", "2022-13"], env=environment, capture_output=True, check=False
    )
    assert bad.returncode == 2
    assert b"month must be between 1 and 12" in bad.stderr


def test_ready_at_the_schema_head_or_ahead_of_it_not_behind(database: str) -> None:
    """Behind: this server's code needs a migration. Ahead (a later version's first
    server migrated, in a rolling deploy): this one goes on serving, as the migration
    rules promise it can (migrations/README.md, rule 4), unless the schema names a
    newer revision as the oldest code it keeps working (rule 5): then it is not
    ready, and a server of this code does not start on it."""
    import asyncio

    import asyncpg

    with server({"DATABASE_URL": database}, workers=1) as api:
        ready = api.get("/health/ready").json()
        assert ready["status"] == "ready"
        assert ready["database"]["role"] == "primary"
        assert ready["database"]["server"]  # host:port, or a local socket
        assert ready["database"]["schema"] == ready["database"]["code_schema"]
        assert ready["database"]["code_schema"] == head_revision()

        async def schema_at(version: str, floor: str = "0012") -> None:
            db = await asyncpg.connect(database)
            await db.execute("UPDATE alembic_version SET version_num = $1", version)
            await db.execute("UPDATE schema_floor SET oldest_code = $1", floor)
            await db.close()

        asyncio.run(schema_at("0001"))  # behind: this code needs a migration
        stale = api.get("/health/ready")
        assert stale.status_code == 503
        assert "schema at 0001" in stale.json()["detail"]

        asyncio.run(schema_at("0099_later"))  # ahead: a later version migrated it
        ahead = api.get("/health/ready")
        assert ahead.status_code == 200, ahead.text
        assert ahead.json()["status"] == "ready"
        assert ahead.json()["database"]["schema"] == "0099_later"  # seen mid-deploy
        assert ahead.json()["database"]["code_schema"] == head_revision()

        asyncio.run(schema_at("0099_later", floor="0098_later"))  # past this code
        too_old = api.get("/health/ready")
        assert too_old.status_code == 503, too_old.text
        assert too_old.json()["detail"] == (
            "schema at 0099_later needs code of revision 0098_later or later;"
            f" this code is at {head_revision()}"
        )
    # A server of this code (re)starting on that schema stops at once, saying why;
    # so does one that migrates nothing (the schema's owner migrates), and a relay.
    for command, env in (
        ("serve", {}),
        ("serve", {"BALANCE_MIGRATE": "0"}),
        ("relay", {"BALANCE_MIGRATE": "0", "BROKER_URL": "amqp://guest:guest@127.0.0.1:9/"}),
    ):
        process = subprocess.Popen(
            [str(BALANCE), command],
            env={**os.environ, "DATABASE_URL": database, "PORT": str(free_port()), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # if it does start, its workers are stopped too
        )
        try:
            _, stderr = process.communicate(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        assert process.returncode == 2, (command, env, stderr)
        assert "needs code of revision 0098_later or later" in stderr
    asyncio.run(schema_at("0099_later"))  # the floor is a revision this code knows
    # A server of this version (re)starting then, which migrates first, starts.
    with server({"DATABASE_URL": database}, workers=1) as api:
        assert api.get("/health/ready").json()["status"] == "ready"
        answer = api.post("/v1/deposits", json={"user_id": 1, "amount": "1"})
        assert answer.status_code == 201, answer.text


def test_workers_log_one_json_line_per_request(database: str) -> None:
    import json

    process = ServerProcess({"DATABASE_URL": database, "LOG_FORMAT": "json"}, workers=2)
    try:
        process.start()
        for n in range(4):  # reaches both workers, most likely
            httpx.get(f"{process.base_url}/v1/services", headers={"X-Request-ID": f"e2e-{n}"})
        assert process.stop() == 0
        lines = [json.loads(line) for line in process.output().splitlines()]  # all JSON
        access = [line for line in lines if line.get("route") == "/v1/services"]
        assert sorted(line["request_id"] for line in access) == [f"e2e-{n}" for n in range(4)]
        assert {line["logger"] for line in access} == {"balance.access"}
    finally:
        process.kill()
