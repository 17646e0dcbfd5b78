"""The bank test as a script: `python -m tests.bank --seconds 300` (`make soak`).

Creates a database of its own on TEST_DATABASE_URL's server (or an embedded one),
starts two `balance serve` processes on it (2 workers and 1 worker), runs the
workload with faults, checks every invariant, prints a summary, and exits 1 if any
check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from adapters.postgres.engine import migrate
from tests import postgres
from tests.bank.checks import Verdict, verify
from tests.bank.workload import SERVER_ENV, Bank, Run, Settings
from tests.servers import ServerProcess


async def bank_run(server_url: str, settings: Settings) -> tuple[Run, Verdict]:
    name = postgres.unique_name()
    url = await postgres.create_database(server_url, name)
    servers: list[ServerProcess] = []
    try:
        await migrate(url)
        servers = [
            ServerProcess({"DATABASE_URL": url, **SERVER_ENV}, workers=2),
            ServerProcess({"DATABASE_URL": url, **SERVER_ENV}, workers=1),
        ]
        for server in servers:
            await asyncio.to_thread(server.start)
        run = await Bank(settings, servers, url).execute()
        verdict = await verify(run, url, servers[0].base_url)
        return run, verdict
    finally:
        for server in servers:
            server.kill()
        await postgres.drop_database(server_url, name)


def summary(run: Run, verdict: Verdict) -> str:
    outcomes = run.outcomes()
    kinds: dict[str, int] = {}
    for op in run.operations:
        kinds[op.kind] = kinds.get(op.kind, 0) + 1
    lines = [
        f"bank run: {len(run.operations)} operations in {run.seconds:.0f} s"
        f" ({len(run.operations) / max(run.seconds, 1e-9):.0f}/s)",
        "  by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())),
        "  sent in batches: "
        + (", ".join(f"{k} {n}" for k, n in sorted(run.batches.items())) or "none"),
        f"  outcomes: ok {outcomes['ok']}, refused {outcomes['refused']},"
        f" unknown {outcomes['unknown']}",
        "  faults injected: "
        + (", ".join(f"{k} {n}" for k, n in sorted(run.faults.items())) or "none"),
        f"  retries: {sum(run.retries.values())} ("
        + ", ".join(f"{k} {n}" for k, n in sorted(run.retries.items()))
        + ")",
        f"  anomalies (5xx other than 503, key reuse): {len(run.anomalies)}",
        f"  invariant checks passed: {len(verdict.passed)} of"
        f" {len(verdict.passed) + len(verdict.failed)}",
    ]
    lines += [f"    ok   {name}" for name in verdict.passed]
    lines += [f"    FAIL {failure}" for failure in verdict.failures]
    lines += [f"    ANOMALY {a}" for a in run.anomalies[:20]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bank", description=__doc__)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--fault-every", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    settings = Settings(
        seconds=args.seconds,
        clients=args.clients,
        users=args.users,
        fault_every=args.fault_every,
        seed=args.seed,
    )
    with postgres.server_url() as server_url:
        run, verdict = asyncio.run(bank_run(server_url, settings))
    print(summary(run, verdict))
    return 1 if verdict.failures or run.anomalies else 0


if __name__ == "__main__":
    sys.exit(main())
