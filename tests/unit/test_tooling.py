"""The project's tools agree with one another."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def test_the_generated_client_builds_with_the_projects_own_uv() -> None:
    """`make client` pins the client's uv_build to the uv the Makefile installs: `uv
    build clients/python` then says nothing about versions."""
    found = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert found is not None
    client = tomllib.loads((ROOT / "clients/python/pyproject.toml").read_text())
    (backend,) = [Requirement(r) for r in client["build-system"]["requires"] if r.startswith("uv")]
    assert backend.specifier.contains(found.group(1)), (backend, found.group(1))


def test_make_run_installs_only_what_serving_needs() -> None:
    """`make run` on a fresh clone syncs the runtime group: no Playwright, mypy or
    schemathesis to serve."""
    planned = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    syncs = [line for line in planned.splitlines() if " sync " in line]
    assert syncs, planned
    assert all("--no-dev" in line for line in syncs), syncs
    assert planned.rstrip().endswith("balance serve"), planned
