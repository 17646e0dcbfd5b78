"""`make bench`: the service against pgbench running the same SQL, on this machine.

Creates a database on the given server, seeds users, starts `balance serve`,
drives each scenario with wrk (64 connections, a separate process), runs pgbench
with the same SQL and clients, and writes the medians to bench/RESULTS.md.
Needs wrk and pgbench on PATH (Debian: `apt-get install wrk postgresql-client`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
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

from adapters.postgres.engine import migrate
from bench.pgbench_scripts import scripts
from tests.servers import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
WRK = {
    "deposit": "deposit.lua",
    "reserve+recognize": "reserve_recognize.lua",
    "transfer": "transfer.lua",
    "hot user": "hot.lua",
    "balance": "balance.lua",
    "statement page": "statement.lua",
}
BENCH_DB = "balance_bench"


@dataclass
class Figures:
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    pg_tps: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # machine CPU per request, service
    worker_ms: list[float] = field(default_factory=list)  # of which the server's processes
    pg_cpu_ms: list[float] = field(default_factory=list)  # machine CPU per op, pgbench


_TICK = os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU time spent by the whole machine, all cores (/proc/stat: busy, not idle)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / _TICK


def process_cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path=f"/{name}").geturl()


async def prepare(url: str, users: int) -> str:
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {BENCH_DB}")
    finally:
        await admin.close()
    bench_url = with_database(url, BENCH_DB)
    await migrate(bench_url)
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
        await db.execute("VACUUM ANALYZE")
    finally:
        await db.close()
    return bench_url


def start_server(url: str, workers: int, port: int) -> ServerProcess:
    pool = os.environ.get("DB_POOL_SIZE", "4")
    server = ServerProcess({"DATABASE_URL": url, "DB_POOL_SIZE": pool}, workers=workers, port=port)
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


def seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_wrk(port: int, scenario: str, args: argparse.Namespace) -> tuple[float, float, float, int]:
    script = ROOT / "bench" / "wrk" / WRK[scenario]
    done = subprocess.run(
        [
            "wrk",
            f"-t{args.threads}",
            f"-c{args.connections}",
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


WRITES = {"deposit", "reserve+recognize", "transfer", "hot user"}


def run_pgbench(
    url: str, scenario: str, args: argparse.Namespace, folder: Path
) -> tuple[float, float]:
    """The ceiling: the faster of prepared single statements and (for writes) the
    service's own compound messages in -M simple. Ops/s and the machine's CPU
    milliseconds per op."""
    best = _pgbench(url, scenario, args, folder, compound=False)
    if scenario in WRITES:
        best = max(best, _pgbench(url, scenario, args, folder, compound=True))
    return best


def _pgbench(
    url: str, scenario: str, args: argparse.Namespace, folder: Path, *, compound: bool
) -> tuple[float, float]:
    parts = urlsplit(url)
    files = []
    for i, (text, weight) in enumerate(scripts(compound)[scenario]):
        path = folder / f"{re.sub(r'[^a-z]+', '_', scenario)}_{i}_{int(compound)}.sql"
        path.write_text(text)
        files += ["-f", f"{path}@{weight}"]
    machine_0 = machine_cpu_seconds()
    done = subprocess.run(
        [
            "pgbench",
            "-n",
            "-M",
            "simple" if compound else "prepared",
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
            *files,
            BENCH_DB,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed for {scenario}:\n{done.stdout}\n{done.stderr}")
    cpu = machine_cpu_seconds() - machine_0
    tps = float(re.search(r"tps = ([\d.]+) \(without", done.stdout).group(1))  # type: ignore[union-attr]
    # A reserve+recognize script is two of the service's requests.
    ops = tps * (2 if scenario == "reserve+recognize" else 1)
    return ops, 1000 * cpu / (ops * args.duration)


def machine() -> str:
    memory = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    version = subprocess.run(
        ["pgbench", "--version"], capture_output=True, text=True, check=True
    ).stdout
    return (
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}),"
        f" {memory / 2**20:.0f} GiB RAM, {version.strip()}, Python {platform.python_version()}"
    )


def table(results: dict[str, Figures], args: argparse.Namespace) -> str:
    lines = [
        f"- Machine: {machine()}",
        f"- Command: `make bench` (`python -m bench.run --workers {args.workers}"
        f" --connections {args.connections} --duration {args.duration} --runs {args.runs}"
        f" --users {args.users}`), {time.strftime('%Y-%m-%d')}",
        f"- Each figure is the median of {args.runs} runs of {args.duration} s;"
        f" {args.connections} connections for wrk and pgbench alike; server with"
        f" {args.workers} granian workers, DB_POOL_SIZE={os.environ.get('DB_POOL_SIZE', '4')}.",
        "- CPU ms: the whole machine's CPU time (all cores, /proc/stat) over the run, per"
        " request or op; in brackets the part spent in the server's own processes.",
        "",
        "| scenario | service req/s | p50 ms | p99 ms | errors | RSS/worker MB"
        " | pgbench ops/s (same SQL) | service/pgbench"
        " | CPU ms/req: service (its workers) | CPU ms/op: pgbench |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, f in results.items():
        rps, pg = statistics.median(f.rps), statistics.median(f.pg_tps)
        lines.append(
            f"| {scenario} | {rps:,.0f} | {statistics.median(f.p50):.1f}"
            f" | {statistics.median(f.p99):.1f} | {sum(f.errors)} | {max(f.rss_mb):.0f}"
            f" | {pg:,.0f} | {rps / pg:.2f}x | {statistics.median(f.cpu_ms):.2f}"
            f" ({statistics.median(f.worker_ms):.2f}) | {statistics.median(f.pg_cpu_ms):.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--scenarios", default=",".join(WRK))
    parser.add_argument("--write", action="store_true", help="write the table into RESULTS.md")
    args = parser.parse_args()
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            sys.exit(
                f"bench: {tool} is not on PATH (Debian: apt-get install wrk postgresql-client)"
            )
    url = asyncio.run(prepare(args.url, args.users))
    results = {name: Figures() for name in args.scenarios.split(",")}
    with tempfile.TemporaryDirectory() as folder:
        for run in range(args.runs):
            for scenario, figures in results.items():
                server = start_server(url, args.workers, args.port)
                try:
                    pids = [server.pid, *server.workers_pids()]
                    machine_0, server_0 = machine_cpu_seconds(), process_cpu_seconds(pids)
                    rps, p50, p99, errors = run_wrk(args.port, scenario, args)
                    requests = rps * args.duration
                    figures.cpu_ms.append(1000 * (machine_cpu_seconds() - machine_0) / requests)
                    figures.worker_ms.append(
                        1000 * (process_cpu_seconds(pids) - server_0) / requests
                    )
                    figures.rss_mb.append(worker_rss_mb(server))
                finally:
                    server.stop()
                figures.rps.append(rps)
                figures.p50.append(p50)
                figures.p99.append(p99)
                figures.errors.append(errors)
                tps, cpu_ms = run_pgbench(url, scenario, args, Path(folder))
                figures.pg_tps.append(tps)
                figures.pg_cpu_ms.append(cpu_ms)
                print(
                    f"run {run + 1} {scenario}: {rps:,.0f} req/s p99 {p99:.1f} ms"
                    f" errors {errors}; pgbench {figures.pg_tps[-1]:,.0f}/s",
                    flush=True,
                )
    output = table(results, args)
    print(output)
    if args.write:
        results_md = ROOT / "bench" / "RESULTS.md"
        text = results_md.read_text()
        start, end = "<!-- bench:money:start -->", "<!-- bench:money:end -->"
        block = f"{start}\n{output}{end}"
        if start in text:
            text = re.sub(re.escape(start) + ".*?" + re.escape(end), block, text, flags=re.S)
        else:
            text += f"\n## Money movements against pgbench (issue 7)\n\n{block}\n"
        results_md.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
