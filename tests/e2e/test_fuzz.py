"""Schemathesis against a running server on PostgreSQL: every operation, valid and
invalid data, stateful links; no 5xx, only documented status codes and content
types, every response conforming to the published schema."""

from __future__ import annotations

import asyncio
import os
import re
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
    token = "fuzz-token-0123456789abcdef"
    server = ServerProcess(
        {"DATABASE_URL": url, "BALANCE_API_TOKENS": f"{token}=read+write+report"}, workers=1
    )
    try:
        server.start()
        fuzz = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{server.base_url}/schema/openapi.json",
                # The published bearer scheme is enforced: schemathesis also checks
                # that requests without it, or with a wrong one, are refused.
                "--header",
                f"Authorization: Bearer {token}",
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
        selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", fuzz.stdout)
        assert selected is not None, fuzz.stdout[-3000:]
        assert len(set(selected.groups())) == 1, selected.group(0)  # every operation tested
    finally:
        server.kill()
        asyncio.run(postgres.drop_database(pg_server, name))
