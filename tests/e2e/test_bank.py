"""The bank test: 32 clients, two servers, kill -9, terminated connections, cancelled
statements, cut-off requests; then every invariant. `make soak` runs the same for minutes."""

from __future__ import annotations

import os

import pytest

from tests.bank.soak import bank_run, summary
from tests.bank.workload import Settings

pytestmark = pytest.mark.postgres


async def test_no_money_is_lost_created_or_moved_twice(pg_server: str) -> None:
    settings = Settings(seconds=float(os.environ.get("BANK_SECONDS", "40")), clients=32)
    run, verdict = await bank_run(pg_server, settings)
    print(summary(run, verdict))
    assert verdict.failures == []
    assert run.anomalies == []
    assert len(verdict.passed) == 9
    outcomes = run.outcomes()
    assert outcomes["ok"] > 200, outcomes
    assert outcomes["refused"] > 0, outcomes
    assert run.batches["atomic"] >= 1, run.batches
    assert run.batches["not atomic"] >= 1, run.batches
    for fault in (
        "kill -9 of a worker",
        "kill -9 of a server, restarted",
        "pg_terminate_backend of the service's connections",
        "pg_cancel_backend of the service's statements",
        "request cut off after sending",
    ):
        assert run.faults[fault] >= 1, run.faults
