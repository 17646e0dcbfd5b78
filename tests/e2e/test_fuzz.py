"""Schemathesis against a running server on PostgreSQL: every operation, valid and
invalid data, stateful links; no 5xx, only documented status codes and content
types, every response conforming to the published schema."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import fresh_server

pytestmark = pytest.mark.postgres

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


TOKEN = "fuzz-token-0123456789abcdef"


@pytest.mark.parametrize("auth", ["off", "on"])
def test_the_api_keeps_its_published_contract_under_fuzzing(pg_server: str, auth: str) -> None:
    """With auth on, the published bearer scheme is enforced: schemathesis also checks
    that requests without it, or with a wrong one, are refused. With auth off, none is
    published, so a request without a token is one the schema allows."""
    env: dict[str, str] = {}
    header: list[str] = []
    if auth == "on":
        env["BALANCE_API_TOKENS"] = f"{TOKEN}=read+write+report"
        header = ["--header", f"Authorization: Bearer {TOKEN}"]
    with fresh_server(pg_server, env) as server:
        fuzz = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{server.base_url}/schema/openapi.json",
                *header,
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
