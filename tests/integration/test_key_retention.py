"""`balance prune-keys`: keys past the retention window are forgotten, the rest kept."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import asyncpg
import pytest

from adapters.postgres.movements import PostgresMovementBatch
from adapters.postgres.retention import FORGET_BATCH, prune_idempotency_keys
from adapters.postgres.session import Engine
from application.deposit import Deposit, deposit
from application.runner import MoneyMovements
from tests import postgres
from tests.helpers import keep, rub
from tests.ledger_view import PostgresLedgerView

pytestmark = pytest.mark.postgres

DAYS_30 = timedelta(days=30)


async def deposit_under_keys(engine: Engine, keys: list[str]) -> MoneyMovements:
    runner = MoneyMovements(lambda: PostgresMovementBatch(engine))
    for key in keys:
        await runner.execute(deposit, Deposit(1, rub("1")), keep, key)
    return runner


async def age(url: str, keys: list[str], days: int) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "UPDATE idempotency_keys SET created_at = clock_timestamp() - make_interval(days => $2)"
            " WHERE key = ANY($1::text[])",
            keys,
            days,
        )
    finally:
        await connection.close()


async def kept(url: str) -> set[str]:
    connection = await asyncpg.connect(url)
    try:
        return {r["key"] for r in await connection.fetch("SELECT key FROM idempotency_keys")}
    finally:
        await connection.close()


async def test_keys_older_than_the_window_are_forgotten_in_batches(
    pg_url: str, pg_engine: Engine
) -> None:
    await postgres.truncate(pg_url)
    old = [f"old-{i}" for i in range(5)]
    await deposit_under_keys(pg_engine, [*old, "young", "edge"])
    await age(pg_url, old, 31)
    await age(pg_url, ["edge"], 29)
    assert await prune_idempotency_keys(pg_url, DAYS_30, batch=2) == 5
    assert await kept(pg_url) == {"young", "edge"}
    assert await prune_idempotency_keys(pg_url, DAYS_30, batch=2) == 0


async def test_a_kept_key_still_replays_and_a_forgotten_one_is_new_again(
    pg_url: str, pg_engine: Engine
) -> None:
    await postgres.truncate(pg_url)
    runner = await deposit_under_keys(pg_engine, ["kept", "forgotten"])
    await age(pg_url, ["forgotten"], 40)
    await prune_idempotency_keys(pg_url, DAYS_30)
    await runner.execute(deposit, Deposit(1, rub("1")), keep, "kept")
    assert (await PostgresLedgerView(pg_url).snapshot()).accounts == {1: (200, 0)}
    await runner.execute(deposit, Deposit(1, rub("1")), keep, "forgotten")
    assert (await PostgresLedgerView(pg_url).snapshot()).accounts == {1: (300, 0)}


async def test_a_window_under_a_day_is_refused(pg_url: str) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        await prune_idempotency_keys(pg_url, timedelta(hours=23))


def prune_keys(url: str, days: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "prune-keys", "--days", days],
        env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_command_prunes_and_refuses_a_bad_window(pg_url: str) -> None:
    for bad in ("0", "-1", "7d"):
        refused = prune_keys(pg_url, bad)
        assert refused.returncode == 2, refused.stderr
        assert "at least 1" in refused.stderr
    done = prune_keys(pg_url, "30")
    assert done.returncode == 0, done.stderr
    assert "forgot 0 idempotency keys older than 30 days" in done.stderr


async def test_old_keys_are_found_through_the_index_and_deleted_by_tid(pg_url: str) -> None:
    connection = await asyncpg.connect(pg_url)
    try:
        await connection.execute("SET enable_seqscan = off")  # is the index usable at all?
        statement = FORGET_BATCH.replace(":age", "'30 days'").replace(":batch", "10000")
        plan = "\n".join(r[0] for r in await connection.fetch(f"EXPLAIN {statement}"))
    finally:
        await connection.close()
    assert "idempotency_keys_by_age" in plan, plan
    assert "Tid Scan" in plan, plan
