"""Python's opcodes a request, this tree against a baseline: the work a request does,
counted, not timed.

On these 2-core machines a bench run's ratios move by a third from one hour to the
next, so a change that costs 1-2% a request is invisible to `make bench`, and a few
of them add up unseen (session 22 found a deposit doing 5% more than ten sessions
before, bench/RESULTS.md). A count of the opcodes the interpreter executes does not
depend on the machine: for one Python and one lock file it is the same every run.

For each tree (this one, and the baseline's worktree that `make bench` makes in
bench/out/, with its own venv), on a database its own migrations built: the ASGI
app driven in process (bench/opcodes_driver.py) for SMALL and then LARGE requests
of each scenario; a request's opcodes are the difference over the requests between
(start-up, warm-up and shutdown cancel). Prints the totals, their ratio, and the
functions whose count moved most.

    .venv/bin/python -m bench.opcodes --baseline REF [--scenarios deposit,reserve,live]

What it does not see: C code (asyncpg's protocol, msgspec, granian, PostgreSQL), so
it is a check of the Python side only; `make bench` remains the measure of speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.run import ROOT, baseline_balance, prepare
from tests.postgres import drop_database
from tests.servers import BALANCE

DRIVER = ROOT / "bench" / "opcodes_driver.py"
SMALL, LARGE = 160, 640
USERS = 10_000
DATABASES = {"tree": "balance_opcodes", "baseline": "balance_opcodes_baseline"}
SCENARIOS = ("deposit", "reserve", "live")


def count(python: Path, tree: Path, url: str, scenario: str, requests: int) -> Counter[str]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        done = subprocess.run(
            [str(python), str(DRIVER), url, scenario, str(requests), out.name],
            cwd=tree,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            sys.exit(f"opcodes: the driver failed in {tree}:\n{done.stderr[-2000:]}")
        return Counter(json.loads(Path(out.name).read_text()))


def per_request(python: Path, tree: Path, url: str, scenario: str) -> dict[str, float]:
    small = count(python, tree, url, scenario, SMALL)
    large = count(python, tree, url, scenario, LARGE)
    return {name: (large[name] - small[name]) / (LARGE - SMALL) for name in small | large}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--baseline", required=True, help="git ref of the previous main")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--top", type=int, default=15, help="functions listed a scenario")
    args = parser.parse_args()
    scenarios = args.scenarios.split(",")
    if unknown := set(scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    # Each side's `balance` command: its venv's python runs the driver in its folder.
    commands = {"tree": BALANCE, "baseline": baseline_balance(args.baseline)}
    try:
        urls = {
            side: asyncio.run(prepare(args.url, USERS, DATABASES[side], balance))
            for side, balance in commands.items()
        }
        for scenario in scenarios:
            mine, theirs = (
                per_request(balance.parent / "python", balance.parents[2], urls[side], scenario)
                for side, balance in commands.items()
            )
            print(
                f"{scenario}: {sum(mine.values()):,.0f} opcodes a request (baseline"
                f" {args.baseline}: {sum(theirs.values()):,.0f}):"
                f" {sum(mine.values()) / sum(theirs.values()):.3f}x"
            )
            moved = {n: mine.get(n, 0.0) - theirs.get(n, 0.0) for n in mine.keys() | theirs}
            for name in sorted(moved, key=lambda n: -abs(moved[n]))[: args.top]:
                if round(moved[name]) != 0:
                    then = theirs.get(name, 0.0)
                    print(f"  {moved[name]:+8.1f}  {then + moved[name]:8.1f} ({then:.1f})  {name}")
    finally:
        for name in DATABASES.values():
            asyncio.run(drop_database(args.url, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
