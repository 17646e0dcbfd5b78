"""The bank test on a real failover cluster (`make test-ha`): a pg_auto_failover
monitor, a primary and a synchronous standby, two `balance serve` processes whose
DATABASE_URL lists both nodes. Faults: a planned switchover, then the primary's
postmaster (and its pg_autoctl) killed with kill -9 and left down until the
standby is promoted. Then every check of the bank test; and the same bank test,
with its own faults, through PgBouncer in transaction mode."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest

from adapters.postgres.engine import migrate
from tests.bank.checks import verify
from tests.bank.soak import summary
from tests.bank.workload import SERVER_ENV, Bank, Settings
from tests.ha.cluster import Cluster, cluster, psql
from tests.servers import ServerProcess

pytestmark = pytest.mark.ha


class FailoverBank(Bank):
    """The bank workload; its faults are the database's: a switchover, then the
    primary killed. `recovered` is the time from the kill to the first movement
    acknowledged after it."""

    def __init__(self, settings: Settings, servers: list[ServerProcess], db: Cluster) -> None:
        super().__init__(settings, servers, db.url)
        self.cluster = db
        self.killed_at: float | None = None
        self.killed: str = ""

    async def _inject_faults(self, deadline: float) -> None:
        start = time.monotonic()
        await self._sleep_until(start + self.settings.seconds * 0.25)
        await asyncio.to_thread(self.cluster.switchover)
        self.run.faults["planned switchover (pg_autoctl perform switchover)"] += 1
        # The old primary catches up and becomes the synchronous standby again:
        # only then may the new primary be lost without losing what it acknowledged.
        await asyncio.to_thread(self.cluster.wait_for_a_standby)
        await self._sleep_until(start + self.settings.seconds * 0.4)
        self.killed = (await asyncio.to_thread(self.cluster.kill_primary)).name
        self.killed_at = time.monotonic()  # finding the primary took a moment first
        self.run.faults["kill -9 of the primary's postmaster, left down"] += 1
        await self._sleep_until(deadline)

    def recovered(self) -> float:
        """From the kill to the first answer to a movement sent after it: one the
        new primary committed."""
        assert self.killed_at is not None
        return self.run.recovered(self.killed_at)


@pytest.fixture(scope="module")
def failover_cluster() -> Iterator[Cluster]:
    with cluster(with_pgbouncer=True) as found:
        asyncio.run(migrate(found.url))
        yield found


def servers_on(url: str, **env: str) -> list[ServerProcess]:
    return [
        ServerProcess({"DATABASE_URL": url, **SERVER_ENV, **env}, workers=2),
        ServerProcess({"DATABASE_URL": url, **SERVER_ENV, **env}, workers=1),
    ]


async def bank_through_a_failover(
    bank_of: Callable[[list[ServerProcess]], FailoverBank],
    db: Cluster,
    *,
    before_the_checks: Callable[[], None] = lambda: None,
) -> FailoverBank:
    """Two servers on the cluster's URL run the bank and its faults; then every check
    of the bank test, which must all pass, and the time to recover is printed."""
    servers = servers_on(db.url)
    try:
        for server in servers:
            await asyncio.to_thread(server.start)
        bank = bank_of(servers)
        run = await bank.execute()
        before_the_checks()
        verdict = await verify(run, db.url, servers[0].base_url)
    finally:
        for server in servers:
            server.kill()
    print(summary(run, verdict))
    recovered = bank.recovered()
    print(f"  time from the fault to the first movement acknowledged after it: {recovered:.1f} s")
    assert verdict.failures == []
    assert run.anomalies == []  # no 5xx but 503, no key reuse
    assert len(verdict.passed) == 9
    assert run.outcomes()["ok"] > 200
    return bank


async def test_nothing_acknowledged_is_lost_through_a_switchover_and_a_primary_killed(
    failover_cluster: Cluster,
) -> None:
    bank = await bank_through_a_failover(
        lambda servers: FailoverBank(Settings(seconds=30, clients=32), servers, failover_cluster),
        failover_cluster,
    )
    assert bank.recovered() < 30
    killed = next(n for n in failover_cluster.nodes if n.name == bank.killed)
    with pytest.raises(RuntimeError):
        psql(killed.port, "SELECT 1")  # left down: the new primary did the rest


async def test_the_bank_holds_through_pgbouncer_in_transaction_mode(
    failover_cluster: Cluster,
) -> None:
    # A database of its own, on the node that is primary again after the first test;
    # the service goes through the pooler, the faults and the checks go direct.
    primary = failover_cluster.primary()
    assert primary is not None
    psql(primary.port, "CREATE DATABASE bouncer_bank")
    direct = failover_cluster.direct_url("bouncer_bank")
    await migrate(direct)
    servers = servers_on(
        failover_cluster.bouncer_url("bouncer_bank"),
        DATABASE_POOLER="pgbouncer",
        BALANCE_MIGRATE="0",
    )
    try:
        for server in servers:
            await asyncio.to_thread(server.start)
        settings = Settings(seconds=20, clients=32, fault_every=5)
        bank = Bank(settings, servers, direct)
        run = await bank.execute()
        verdict = await verify(run, direct, servers[0].base_url)
    finally:
        for server in servers:
            server.kill()
    print(summary(run, verdict))
    assert verdict.failures == []
    assert run.anomalies == []
    assert run.outcomes()["ok"] > 200
