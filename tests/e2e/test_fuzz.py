"""Schemathesis against a running server on PostgreSQL: every operation, valid and
invalid data, stateful links; no 5xx, only documented status codes and content
types, every response conforming to the published schema."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import postgres
from tests.servers import ServerProcess

pytestmark = pytest.mark.postgres

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_the_api_keeps_its_published_contract_under_fuzzing(pg_server: str) -> None:
    name = postgres.unique_name()
    url = asyncio.run(postgres.create_database(pg_server, name))
    server = ServerProcess({"DATABASE_URL": url}, workers=1)
    try:
        server.start()
        fuzz = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{server.base_url}/schema/openapi.json",
                "--checks",
                "all",
                # Valid by the schema yet refused by rules a schema cannot state: the
                # same user on both sides of a transfer, from >= to, an unknown cursor,
                # a generated Idempotency-Key reused with another body.
                "--exclude-checks",
                "positive_data_acceptance",
                "--max-examples",
                os.environ.get("FUZZ_EXAMPLES", "40"),
                "--seed",
                os.environ.get("FUZZ_SEED", "20221101"),
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert fuzz.returncode == 0, fuzz.stdout[-20000:] + fuzz.stderr[-5000:]
        assert "Tested: 16" in fuzz.stdout, fuzz.stdout[-3000:]
    finally:
        server.kill()
        asyncio.run(postgres.drop_database(pg_server, name))
