"""A rolling deploy, for real, under the bank's load: the code before the newest
migration (its tree taken from this repository's history) serves on two servers;
this code's first server migrates the database while they move money; one old
server is killed and restarts on the newer schema; then the old servers are
replaced one by one. Every request is keyed, and each attempt goes to any server of
the moment, so retries cross versions. Then every bank check, `balance verify`
among them, holds: the migration keeps the version before it working
(migrations/README.md, rule 4), and the old servers stay ready throughout."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from adapters.postgres.revisions import head_revision
from tests.bank.checks import verify
from tests.bank.soak import summary
from tests.bank.workload import SERVER_ENV, Bank, Run, Settings, bearer
from tests.broker import BROKER_URL, consumer, unique_exchange, validate
from tests.events_check import all_sent, pulled
from tests.servers import ServerProcess, server_of_tree, tree_at

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ROOT / "migrations" / "versions"


def code_before_the_newest_migration() -> str:
    """The commit before the one that added the newest migration: the code that ran
    on the schema one migration back (HEAD while the newest is not committed yet)."""
    newest = next(VERSIONS.glob(f"{head_revision()}_*.py")).relative_to(ROOT)
    added = subprocess.run(
        ["git", "log", "-1", "--format=%H", "--diff-filter=A", "--", str(newest)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"{added}~1" if added else "HEAD"


STORES_REFUSALS = "af9cbaf"
"""The commit from which the service stores a keyed refusal under its key."""


def stores_refusals(commit: str) -> bool:
    """Whether the code at `commit` stores keyed refusals (so a retry of a key it
    refused is answered the refusal, which the bank then checks)."""
    descends = subprocess.run(
        ["git", "merge-base", "--is-ancestor", STORES_REFUSALS, commit], cwd=ROOT, check=False
    )
    return descends.returncode == 0


@pytest.fixture(scope="module")
def old_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    commit = code_before_the_newest_migration()
    folder = tree_at(commit, tmp_path_factory.mktemp("before-newest-migration"))
    known = {path.name for path in (folder / "migrations" / "versions").glob("*.py")}
    assert not any(name.startswith(f"{head_revision()}_") for name in known), commit
    return folder


def ready(server: ServerProcess) -> httpx.Response:
    return httpx.get(f"{server.base_url}/health/ready", timeout=10)


class RollingDeploy:
    """Two servers of the old code, replaced by two of this code, on a timetable."""

    def __init__(self, database: str, old_tree: Path, env: dict[str, str] | None = None) -> None:
        env = {"DATABASE_URL": database, **SERVER_ENV, **(env or {})}
        self.old = [server_of_tree(old_tree, env, 2), server_of_tree(old_tree, env, 1)]
        self.new = [ServerProcess(env, workers=1), ServerProcess(env, workers=1)]
        self.started: list[ServerProcess] = []
        self.steps: list[tuple[str, float]] = []
        """What was done, and when (`time.monotonic()`)."""

    def step(self, done: str) -> None:
        self.steps.append((done, time.monotonic()))

    async def start(self, server: ServerProcess) -> None:
        self.started.append(server)
        await asyncio.to_thread(server.start)

    def kill_all(self) -> None:
        for server in self.started:
            server.kill()

    async def run(self, serving: list[ServerProcess]) -> None:
        """`serving`: the servers clients send to, changed as a load balancer would."""
        old, new = self.old, self.new
        begun = time.monotonic()

        async def at(second: float) -> None:
            await asyncio.sleep(max(0.0, begun + second - time.monotonic()))

        await at(3)
        await self.start(new[0])  # migrates to this code's head, under load
        for server in old:
            answer = await asyncio.to_thread(ready, server)
            assert answer.status_code == 200, answer.text
        serving.append(new[0])
        self.step("migrated; the old servers stay ready")
        await at(8)
        old[1].kill()  # an old server crashes, and restarts on the newer schema
        await self.start(old[1])
        answer = await asyncio.to_thread(ready, old[1])
        assert answer.status_code == 200, answer.text
        self.step("an old server restarted on the newer schema")
        await at(13)
        serving.remove(old[0])  # replaced: its requests in flight finish first
        assert await asyncio.to_thread(old[0].stop) == 0
        await self.start(new[1])
        serving.append(new[1])
        await at(18)
        serving.remove(old[1])
        assert await asyncio.to_thread(old[1].stop) == 0
        self.step("every old server replaced")


async def deploy_under_load(deploy: RollingDeploy, database: str) -> Run:
    """The old servers start (the first migrates to the schema one migration back),
    then the bank's clients move money through the whole deploy."""
    for server in deploy.old:
        await deploy.start(server)
    # The deploy is the only fault; no request is cut off, so each gets its answer.
    settings = Settings(seconds=24, clients=16, fault_every=1e6, cut_off_share=0)
    bank = Bank(settings, list(deploy.old), database)
    load_ends = time.monotonic() + settings.seconds  # when clients send no more
    run, _ = await asyncio.gather(bank.execute(), deploy.run(bank.servers))
    # every step of the deploy was done while the clients were still sending
    late = [(done, round(at - load_ends, 1)) for done, at in deploy.steps if at > load_ends]
    assert late == [], late
    assert run.anomalies == []
    outcomes = run.outcomes()
    assert outcomes["ok"] > 200, outcomes
    assert outcomes["unknown"] == 0, outcomes  # a deploy leaves no request unanswered
    assert run.retries["connection"] > 0, run.retries  # the crash's: sent again elsewhere
    return run


async def test_a_rolling_deploy_under_load_loses_nothing_and_keeps_old_servers_ready(
    old_tree: Path, database: str
) -> None:
    deploy = RollingDeploy(database, old_tree)
    try:
        run = await deploy_under_load(deploy, database)
        # Code older than af9cbaf stored no refusals: a refused key it answered would
        # run again; from the first migration after it, the old code stores them too.
        stored = stores_refusals(code_before_the_newest_migration())
        verdict = await verify(run, database, deploy.new[0].base_url, refusals_stored=stored)
    finally:
        deploy.kill_all()
    print(summary(run, verdict))
    assert verdict.failures == []
    assert len(verdict.passed) == 9
    for server in deploy.old:  # the old code did serve money movements
        assert "POST /v1/" in server.output(), server.output()[-2000:]


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


async def lease_holders(database: str, deploy: RollingDeploy, done: asyncio.Event) -> set[str]:
    """Which versions' relays held the lease while the deploy ran: "old", "new"."""
    seen: set[str] = set()
    db = await asyncpg.connect(database)
    try:
        while not done.is_set():
            await asyncio.sleep(0.1)
            try:
                holder = await db.fetchval(
                    "SELECT holder FROM event_relay WHERE lease_until > clock_timestamp()"
                )
            except asyncpg.UndefinedTableError:  # the first server is still migrating
                continue
            # host:pid of a relay process, a child of its `balance serve`
            parent = parent_of(int(holder.rsplit(":", 1)[1])) if holder else None
            for version, servers in (("old", deploy.old), ("new", deploy.new)):
                if any(s.running() and s.pid == parent for s in servers):
                    seen.add(version)
    finally:
        await db.close()
    return seen


# aio-pika's robust connection of the consumer leaves a close coroutine to the garbage
# collector: the consumer's, not the service's.
@pytest.mark.broker
@pytest.mark.filterwarnings("ignore:coroutine 'Connection.close' was never awaited")
async def test_a_rolling_deploy_hands_the_relay_over_and_every_event_reaches_the_broker(
    old_tree: Path, database: str
) -> None:
    """Each server runs a relay beside it (one at a time holds the lease): the lease
    passes between versions as old servers crash and stop. The consumer gets every
    event, first arrivals in order and as this code's AsyncAPI document describes
    them, the same as the pull API tells."""
    exchange = unique_exchange()
    broker = {"BROKER_URL": BROKER_URL, "BROKER_EXCHANGE": exchange, "RELAY_LEASE_MS": "1500"}
    deploy = RollingDeploy(database, old_tree, broker)
    async with consumer(exchange) as received:
        done = asyncio.Event()
        watching = asyncio.create_task(lease_holders(database, deploy, done))
        try:
            await deploy_under_load(deploy, database)
            done.set()
            holders = await watching
            last_id, _ = await all_sent(database, seconds=60)
            await received.until(last_id, seconds=60)
            base_url = deploy.new[0].base_url
            async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=bearer()) as api:
                told = await pulled(api)
        finally:
            deploy.kill_all()
    assert holders == {"old", "new"}, holders  # the lease passed between versions
    firsts = received.first_arrivals()
    ordered = sorted(firsts, key=lambda e: e["event_id"])
    assert [e["event_id"] for e in ordered] == list(range(1, last_id + 1))
    for user in {e["user_id"] for e in firsts}:
        seqs = [e["user_seq"] for e in firsts if e["user_id"] == user]
        assert seqs == sorted(seqs), f"user {user}: first arrivals {seqs[:10]}"
    for body, _, headers, _ in received.messages:
        validate(body, headers)
    assert ordered == told, "the broker and the pull API tell the same story"
