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

import asyncpg

from bench.run import ROOT, baseline_balance, prepare

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


async def drop(url: str) -> None:
    admin = await asyncpg.connect(url)
    try:
        for name in DATABASES.values():
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


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
    balance = baseline_balance(args.baseline)
    trees = {
        "tree": (ROOT, ROOT / ".venv" / "bin" / "python", ROOT / ".venv" / "bin" / "balance"),
        "baseline": (balance.parents[2], balance.parent / "python", balance),
    }
    try:
        urls = {
            side: asyncio.run(prepare(args.url, USERS, DATABASES[side], command))
            for side, (_, _, command) in trees.items()
        }
        for scenario in scenarios:
            counted = {
                side: per_request(python, tree, urls[side], scenario)
                for side, (tree, python, _) in trees.items()
            }
            mine, theirs = sum(counted["tree"].values()), sum(counted["baseline"].values())
            print(
                f"{scenario}: {mine:,.0f} opcodes a request"
                f" (baseline {args.baseline}: {theirs:,.0f}): {mine / theirs:.3f}x"
            )
            names = counted["tree"].keys() | counted["baseline"].keys()
            moved = sorted(
                names,
                key=lambda n: -abs(counted["tree"].get(n, 0) - counted["baseline"].get(n, 0)),
            )
            for name in moved[: args.top]:
                now, then = counted["tree"].get(name, 0.0), counted["baseline"].get(name, 0.0)
                if round(now - then) != 0:
                    print(f"  {now - then:+8.1f}  {now:8.1f} ({then:.1f})  {name}")
    finally:
        asyncio.run(drop(args.url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
