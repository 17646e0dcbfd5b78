"""`make bench`: this tree against the previous main, side by side, and against
PostgreSQL's own ceiling, in one run on this machine.

Creates a database on the given server and seeds users; checks out the baseline
ref into bench/out/ (a git worktree with its own venv, `make install`); then, for
each round and scenario: starts `balance serve` of this tree and drives it with wrk
(a separate process), does the same with the baseline, and runs pgbench's minimal
reserve transaction (a guarded UPDATE of a balance and an INSERT into a ledger,
one per transaction) with the same clients. Medians go to bench/RESULTS.md.
Needs wrk and pgbench on PATH (Debian: `apt-get install wrk postgresql-client`).
These 2-core machines are noisy: compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx

from tests.processes import processes
from tests.servers import BALANCE, ServerProcess

ROOT = Path(__file__).resolve().parents[1]
WRK = {
    "deposit": "deposit.lua",
    "reserve": "reserve.lua",
    "reserve+recognize": "reserve_recognize.lua",
    "transfer": "transfer.lua",
    "hot user": "hot.lua",
    "balance": "balance.lua",
    "statement page": "statement.lua",
    "batch": "batch.lua",
    # The framework's floor: the same workers answering a route that does nothing.
    "live": "live.lua",
}
# A batch request carries 100 movements, at 8 connections (issue 15); a baseline
# from before batches (it has no entrypoints/http/batches.py) does not run it.
MOVEMENTS = {"batch": 100}
CONNECTIONS = {"batch": 8}
BATCHES = Path("entrypoints/http/batches.py")
BENCH_DB = "balance_bench"
WARM_UP_SECONDS = 3
BASELINE_DB = "balance_bench_baseline"
MINIMAL_RESERVE = """\\set uid random(1, :users)
BEGIN;
UPDATE accounts SET available = available - 1, reserved = reserved + 1
    WHERE user_id = :uid AND available >= 1;
INSERT INTO bench_ledger (user_id, amount) VALUES (:uid, 1);
END;
"""


@dataclass
class Run:
    """One server's figures for one scenario, a list with one value per round."""

    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    pg_cpu_ms: list[float] = field(default_factory=list)  # PostgreSQL's CPU per movement
    app_cpu_ms: list[float] = field(default_factory=list)  # the service's CPU per movement
    batch: list[float] = field(default_factory=list)  # mean commands per transaction
    # The histogram bucket (an upper bound) holding the median and the 90th percentile.
    batch_p50: list[float] = field(default_factory=list)
    batch_p90: list[float] = field(default_factory=list)
    # Where the machine's cores went over the load: CORES' parts, in cores (CPU
    # seconds a second), one dict per round.
    cores: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Scenario:
    tree: Run = field(default_factory=Run)
    baseline: Run = field(default_factory=Run)


_TICK = os.sysconf("SC_CLK_TCK")
CORES = ("service", "PostgreSQL", "wrk", "other", "idle", "stolen")


def machine_cpu_seconds() -> tuple[float, float, float]:
    """The whole machine's CPU time so far (/proc/stat): busy, idle and stolen (what
    the hypervisor gave to other guests: these are shared virtual machines)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = ticks[:8]
    busy = user + nice + system + irq + softirq
    return busy / _TICK, (idle + iowait) / _TICK, steal / _TICK


def children_cpu_seconds() -> float:
    """CPU time of this process's finished children (wrk, once it is waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL process on this machine (the server and backends)."""
    return sum(p.cpu_ticks for p in processes() if p.name.startswith("postgres")) / _TICK


def service_cpu_seconds(server: ServerProcess) -> float:
    """CPU time of the server's processes (granian's main process and its workers)."""
    pids = {server.pid, *server.workers_pids()}
    return sum(p.cpu_ticks for p in processes() if p.pid in pids) / _TICK


def with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path=f"/{name}").geturl()


async def prepare(url: str, users: int, name: str = BENCH_DB, balance: Path = BALANCE) -> str:
    """A database `name` with `users` users, built by `balance`'s own migrations: each
    tree is measured on its own schema, as it runs in production (a migration that
    saves work per movement, or costs it, shows in the ratio)."""
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    bench_url = with_database(url, name)
    env = {**os.environ, "DATABASE_URL": bench_url, "LOG_LEVEL": "WARNING"}
    migrating = await asyncio.create_subprocess_exec(
        str(balance), "migrate", cwd=balance.parents[2], env=env, stdout=subprocess.DEVNULL
    )
    if await migrating.wait() != 0:
        sys.exit(f"bench: {balance} migrate failed")
    db = await asyncpg.connect(bench_url)
    try:
        # Every user starts with one deposit of 1,000,000,000.00, as the service would write it.
        await db.execute(
            """
            INSERT INTO accounts (user_id, available) SELECT g, 100000000000
            FROM generate_series(1, $1::int) AS g;
            """,
            users,
        )
        await db.execute(
            """
            WITH tx AS (
                INSERT INTO transactions (kind, user_id, description)
                SELECT 'deposit', g, 'seed' FROM generate_series(1, $1::int) AS g
                RETURNING id, user_id, created_at
            )
            INSERT INTO entries (transaction_id, account, kind, user_id, amount, balance_after,
                                 created_at)
            SELECT id, 'external', 'deposit', NULL, -100000000000, NULL, created_at FROM tx
            UNION ALL
            SELECT id, 'available', 'deposit', user_id, 100000000000, 100000000000, created_at
            FROM tx
            """,
            users,
        )
        await db.execute(
            "CREATE TABLE bench_ledger (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " user_id BIGINT NOT NULL, amount BIGINT NOT NULL,"
            " created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())"
        )
        await db.execute("VACUUM ANALYZE")
    finally:
        await db.close()
    return bench_url


def baseline_balance(ref: str) -> Path:
    """The baseline's `balance` command, from a worktree of `ref` with its own venv."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    folder = ROOT / "bench" / "out" / f"baseline-{sha[:12]}"
    if not folder.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(folder), sha], cwd=ROOT, check=True
        )
    subprocess.run(["make", "install"], cwd=folder, check=True, stdout=subprocess.DEVNULL)
    return folder / ".venv" / "bin" / "balance"


def start_server(url: str, args: argparse.Namespace, balance: Path) -> ServerProcess:
    # prepare() migrated the database already, with the tree's own migrations.
    env = {
        "DATABASE_URL": url,
        "DB_POOL_SIZE": str(args.pool),
        "LOG_LEVEL": args.log_level,
        "BALANCE_MIGRATE": "0",
    }
    server = ServerProcess(
        env, workers=args.workers, port=args.port, balance=balance, cwd=balance.parents[2]
    )
    server.start()
    return server


def worker_rss_mb(server: ServerProcess) -> float:
    """The largest worker's resident memory."""
    rss = [0.0]
    for pid in server.workers_pids():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if kb := re.search(r"VmRSS:\s+(\d+) kB", status):
            rss.append(int(kb.group(1)) / 1024)
    return max(rss)


def batch_sizes(server: ServerProcess) -> tuple[float, float, float]:
    """Commands per database transaction over the server's life: the mean, and the
    `balance_batch_size` buckets (upper bounds) that hold the median and the 90th
    percentile transaction. Zeros: the server does not say."""
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    sums = re.search(r"^balance_batch_size_sum (\S+)$", text, re.M)
    counts = re.search(r"^balance_batch_size_count (\S+)$", text, re.M)
    if sums is None or counts is None or float(counts.group(1)) == 0:
        return 0.0, 0.0, 0.0
    count = float(counts.group(1))
    buckets = sorted(
        (float(bound), float(seen))
        for bound, seen in re.findall(
            r'^balance_batch_size_bucket\{le="([^"+]+)"\} (\S+)$', text, re.M
        )
    )

    def bucket_of(share: float) -> float:
        return next((bound for bound, seen in buckets if seen >= share * count), float("inf"))

    return float(sums.group(1)) / count, bucket_of(0.5), bucket_of(0.9)


def seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_wrk(port: int, scenario: str, args: argparse.Namespace) -> tuple[float, float, float, int]:
    script = ROOT / "bench" / "wrk" / WRK[scenario]
    connections = CONNECTIONS.get(scenario, args.connections)
    done = subprocess.run(
        [
            "wrk",
            f"-t{min(args.threads, connections)}",
            f"-c{connections}",
            f"-d{args.duration}s",
            "--latency",
            "--timeout",
            "30s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            str(args.users),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = seconds(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = seconds(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if found := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(found.group(1))
    if found := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(g) for g in found.groups())
    return rps, p50 * 1000, p99 * 1000, errors


async def analyze(url: str) -> None:
    """Fresh statistics before every run, as production's autovacuum keeps them (this
    machine's server runs without it). The runs fill tables (reservations, keys,
    events) by tens of thousands of rows each, and a statement planned on statistics
    of a table as it was (its generic plan kept for the connection's life) scanned
    one whole as it grew: a first round's reserves ran at a third of the next ones'."""
    db = await asyncpg.connect(url)
    try:
        await db.execute("ANALYZE")
    finally:
        await db.close()


def measure(url: str, scenario: str, args: argparse.Namespace, balance: Path, into: Run) -> None:
    asyncio.run(analyze(url))
    server = start_server(url, args, balance)
    try:
        pg_0, app_0 = postgres_cpu_seconds(), service_cpu_seconds(server)
        wrk_0, machine_0, started = children_cpu_seconds(), machine_cpu_seconds(), time.monotonic()
        requests, p50, p99, errors = run_wrk(args.port, scenario, args)
        seconds = time.monotonic() - started
        rps = requests * MOVEMENTS.get(scenario, 1)  # movements a second
        done = rps * args.duration
        pg, app = postgres_cpu_seconds() - pg_0, service_cpu_seconds(server) - app_0
        wrk = children_cpu_seconds() - wrk_0
        busy, idle, stolen = (b - a for a, b in zip(machine_0, machine_cpu_seconds(), strict=True))
        into.pg_cpu_ms.append(1000 * pg / done)
        into.app_cpu_ms.append(1000 * app / done)
        parts = (app, pg, wrk, max(busy - app - pg - wrk, 0.0), idle, stolen)
        into.cores.append({name: cpu / seconds for name, cpu in zip(CORES, parts, strict=True)})
        into.rss_mb.append(worker_rss_mb(server))
        mean_batch, median_batch, p90_batch = batch_sizes(server)
        into.batch.append(mean_batch)
        into.batch_p50.append(median_batch)
        into.batch_p90.append(p90_batch)
    finally:
        server.stop()
    into.rps.append(rps)
    into.p50.append(p50)
    into.p99.append(p99)
    into.errors.append(errors)


def runs_on(balance: Path, scenario: str) -> bool:
    """Whether the tree of this `balance` command serves the scenario: a baseline
    from before batches has no /v1/batches."""
    return scenario != "batch" or (balance.parents[2] / BATCHES).exists()


def minimal_reserve(url: str, args: argparse.Namespace, folder: Path) -> float:
    """Transactions a second of pgbench's minimal reserve, one movement each."""
    parts = urlsplit(url)
    script = folder / "minimal_reserve.sql"
    script.write_text(MINIMAL_RESERVE)
    done = subprocess.run(
        [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-c",
            str(args.connections),
            "-j",
            str(args.threads),
            "-T",
            str(args.duration),
            "-D",
            f"users={args.users}",
            "-h",
            parts.hostname or "127.0.0.1",
            "-p",
            str(parts.port or 5432),
            "-U",
            parts.username or "postgres",
            "-f",
            str(script),
            BENCH_DB,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{done.stdout}\n{done.stderr}")
    return float(re.search(r"tps = ([\d.]+) \(without", done.stdout).group(1))  # type: ignore[union-attr]


def machine() -> str:
    memory = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    version = subprocess.run(
        ["pgbench", "--version"], capture_output=True, text=True, check=True
    ).stdout
    return (
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}),"
        f" {memory / 2**20:.0f} GiB RAM, {version.strip()}, Python {platform.python_version()}"
    )


def table(results: dict[str, Scenario], pgbench: list[float], args: argparse.Namespace) -> str:
    med = statistics.median
    ceiling = med(pgbench)
    lines = [
        f"- Machine: {machine()}",
        f"- Command: `make bench BASELINE={args.baseline}` (`python -m bench.run"
        f" --baseline {args.baseline} --workers {args.workers} --pool {args.pool}"
        f" --connections {args.connections} --duration {args.duration} --rounds {args.rounds}"
        f" --users {args.users}`), {time.strftime('%Y-%m-%d')}",
        f"- Each figure is the median of {args.rounds} rounds of {args.duration} s; in each"
        f" round every scenario ran on this tree, then on the baseline, then pgbench; wrk"
        f" and pgbench with {args.connections} connections; servers with {args.workers}"
        f" granian workers and DB_POOL_SIZE={args.pool}.",
        f"- pgbench's minimal reserve transaction (a guarded UPDATE and a ledger INSERT,"
        f" one movement per transaction): {ceiling:,.0f} tps (rounds:"
        f" {', '.join(f'{v:,.0f}' for v in pgbench)}).",
        "- PG CPU ms: CPU time of every PostgreSQL process over the run, per movement;"
        " app CPU ms: of the service's processes (granian and its workers), per movement.",
        "- Movements/s: requests a second, times 100 for `batch` (batches of 100 deposits and"
        " transfers at 8 connections).",
        "- Commands/transaction: the mean, then (≤p50, ≤p90): the `balance_batch_size`"
        " buckets that hold the median and the 90th-percentile transaction.",
        "",
        "| scenario | this tree movements/s | baseline | this/baseline | this/pgbench reserve"
        " | p50 ms | p99 ms | errors | RSS/worker MB | commands/transaction"
        " | PG CPU ms/movement (baseline) | app CPU ms/movement (baseline) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in results.items():
        tree, base = s.tree, s.baseline
        rps = med(tree.rps)
        if base.rps:
            base_rps, ratio = f"{med(base.rps):,.0f}", f"{rps / med(base.rps):.2f}x"
            base_errors, base_cpu = f" (baseline {sum(base.errors)})", f"{med(base.pg_cpu_ms):.3f}"
            base_app = f"{med(base.app_cpu_ms):.3f}"
        else:
            base_rps = ratio = base_cpu = base_app = "-"
            base_errors = ""
        lines.append(
            f"| {name} | {rps:,.0f} | {base_rps} | {ratio}"
            f" | {rps / ceiling:.2f}x | {med(tree.p50):.1f} | {med(tree.p99):.1f}"
            f" | {sum(tree.errors)}{base_errors} | {max(tree.rss_mb):.0f}"
            f" | {med(tree.batch):.1f}{_spread(tree)} | {med(tree.pg_cpu_ms):.3f} ({base_cpu})"
            f" | {med(tree.app_cpu_ms):.3f} ({base_app}) |"
        )
    lines += _cores(results)
    return "\n".join(lines) + "\n"


def _cores(results: dict[str, Scenario]) -> list[str]:
    """Where the machine's cores went while wrk loaded this tree: medians per part."""
    med = statistics.median
    lines = [
        "",
        "Where the cores went while wrk loaded this tree (cores: CPU seconds a second of"
        " the window, medians of the rounds; /proc/stat and each process's own times;"
        " other: the rest of the machine's busy time, the broker and the kernel among it;"
        " stolen: taken by the hypervisor for other guests):",
        "",
        f"| scenario | {' | '.join(CORES)} |",
        f"|---|{'---:|' * len(CORES)}",
    ]
    for name, s in results.items():
        if s.tree.cores:
            parts = [med(r[part] for r in s.tree.cores) for part in CORES]
            lines.append(f"| {name} | {' | '.join(f'{v:.2f}' for v in parts)} |")
    return lines


def _spread(run: Run) -> str:
    if not run.batch_p50 or max(run.batch_p50) == 0:
        return ""
    med = statistics.median
    return f" (≤{med(run.batch_p50):.0f}, ≤{med(run.batch_p90):.0f})"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--baseline", required=True, help="git ref of the previous main")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", type=int, default=4)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--scenarios", default=",".join(WRK))
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="the servers' LOG_LEVEL: WARNING (no access lines) as every run before "
        "2026-12-04; INFO is production's default, a JSON line a request",
    )
    parser.add_argument("--write", action="store_true", help="write the table into RESULTS.md")
    return parser.parse_args()


def need(*tools: str) -> None:
    """Exit with one line naming the first tool missing from PATH, before any work."""
    for tool in tools:
        if shutil.which(tool) is None:
            sys.exit(
                f"bench: {tool} is not on PATH (Debian: apt-get install wrk postgresql-client)"
            )


def main() -> int:
    args = arguments()
    need("wrk", "pgbench")
    baseline = baseline_balance(args.baseline)
    url = asyncio.run(prepare(args.url, args.users))
    baseline_url = asyncio.run(prepare(args.url, args.users, BASELINE_DB, baseline))
    results = {name: Scenario() for name in args.scenarios.split(",")}
    pgbench: list[float] = []
    # A short unmeasured run of every scenario on each tree first: a service's tables
    # are not empty in production, and statistics taken of an empty one (analyze()
    # runs before each measured run) give the plans of an empty one.
    warm_up = argparse.Namespace(**{**vars(args), "duration": WARM_UP_SECONDS})
    for name in results:
        measure(url, name, warm_up, BALANCE, Run())
        if runs_on(baseline, name):
            measure(baseline_url, name, warm_up, baseline, Run())
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for name, scenario in results.items():
                measure(url, name, args, BALANCE, scenario.tree)
                if runs_on(baseline, name):
                    measure(baseline_url, name, args, baseline, scenario.baseline)
                base = scenario.baseline.rps[-1] if scenario.baseline.rps else 0
                print(
                    f"round {round_ + 1} {name}: {scenario.tree.rps[-1]:,.0f} movements/s"
                    f" (baseline {base:,.0f}),"
                    f" p99 {scenario.tree.p99[-1]:.1f} ms, {scenario.tree.batch[-1]:.1f}"
                    " commands/transaction",
                    flush=True,
                )
            pgbench.append(minimal_reserve(url, args, Path(folder)))
            print(f"round {round_ + 1} pgbench minimal reserve: {pgbench[-1]:,.0f} tps")
    output = table(results, pgbench, args)
    print(output)
    if args.write:
        results_md = ROOT / "bench" / "RESULTS.md"
        text = results_md.read_text()
        start, end = "<!-- bench:money:start -->", "<!-- bench:money:end -->"
        block = f"{start}\n{output}{end}"
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), block, text, flags=re.S)
        results_md.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
