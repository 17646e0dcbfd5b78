"""A primary gone without a word (`make test-ha`): the bank test on failover
clusters of their own whose primary, listed first in DATABASE_URL, is lost mid-run
without a refusal ever coming, and pg_auto_failover promotes the standby. The
service must reach it: every host of the URL gets a connect timeout of its own
(asyncpg's one timeout for all of them was used up by the lost host, and not one
connection reached the new primary).

Two ways to be lost: frozen with SIGSTOP (its port still takes connections and its
kernel acknowledges what is sent, but nothing answers: only a statement's time
limit ends a request sent there), and cut off the network (iptables drops every
packet: nothing is acknowledged, and the kernel ends the connection after
TCP_USER_TIMEOUT). And the other node lost: the synchronous standby killed, which
every COMMIT waits for until the monitor gives up on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from adapters.postgres.engine import (
    COMMAND_TIMEOUT,
    TCP_USER_TIMEOUT,
    create_engine,
    database_status,
)
from adapters.postgres.revisions import head_revision
from tests.bank.workload import Settings
from tests.ha.cluster import Cluster, Node, kill_all_of
from tests.ha.test_failover import FailoverBank, bank_through_a_failover
from tests.servers import ServerProcess

pytestmark = pytest.mark.ha


class LostNodeBank(FailoverBank):
    """The bank workload; its one fault: a node lost a third into the run (`lose`),
    and left so."""

    def __init__(
        self,
        servers: list[ServerProcess],
        db: Cluster,
        lose: Callable[[Cluster], Node],
        fault: str,
    ) -> None:
        super().__init__(Settings(seconds=60, clients=32), servers, db)
        self._lose, self._fault = lose, fault

    async def _inject_faults(self, deadline: float) -> None:
        await self._sleep_until(time.monotonic() + self.settings.seconds / 3)
        self.killed = (await asyncio.to_thread(self._lose, self.cluster)).name
        self.killed_at = time.monotonic()
        self.run.faults[self._fault] += 1
        await self._sleep_until(deadline)


async def lose_the_primary(
    db: Cluster, lose: Callable[[Cluster], Node], fault: str, *, for_good: Callable[[], None]
) -> FailoverBank:
    """The bank test through the loss of the primary, listed first in the URL;
    `for_good`: the lost machine never comes back (the checks read the new primary)."""
    primary = db.primary()
    assert primary is db.nodes[0]
    bank = await bank_through_a_failover(
        lambda servers: LostNodeBank(servers, db, lose, fault),
        db,
        before_the_checks=for_good,
    )
    assert bank.killed == primary.name
    return bank


async def test_a_primary_gone_without_a_word_is_failed_over_and_nothing_acknowledged_is_lost(
    own_cluster: Cluster,
) -> None:
    primary = own_cluster.nodes[0]
    bank = await lose_the_primary(
        own_cluster,
        Cluster.stop_primary,
        "the primary frozen (SIGSTOP), left frozen",
        for_good=lambda: kill_all_of(primary),
    )
    # Detection and promotion take about 8 s here; a statement on a connection to the
    # frozen primary gives up after its 20 s (command_timeout).
    assert bank.recovered() < 35


async def test_a_primary_cut_off_the_network_holds_requests_for_seconds_not_a_statement_s_limit(
    own_cluster: Cluster,
) -> None:
    primary = own_cluster.nodes[0]

    def for_good() -> None:  # down before it can be reached again
        kill_all_of(primary)
        own_cluster.reconnect()

    bank = await lose_the_primary(
        own_cluster,
        Cluster.cut_off_primary,
        "the primary cut off the network (iptables), left so",
        for_good=for_good,
    )
    # Detection and promotion take about 8 s. The batch in flight on the cut primary
    # ends when its statement has gone TCP_USER_TIMEOUT (5 s) unacknowledged, not
    # after its COMMAND_TIMEOUT (20 s), and the next connections find the new primary.
    assert TCP_USER_TIMEOUT < COMMAND_TIMEOUT
    assert bank.recovered() < 16


async def test_the_standby_lost_holds_writes_for_seconds_and_loses_nothing(
    own_cluster: Cluster,
) -> None:
    """The synchronous standby killed: every COMMIT waits for it until the monitor
    gives up on it and has the primary stop waiting (wait_primary, pg_auto_failover's
    choice of availability: docs/operations.md); then writes go on, on one node."""
    standby = own_cluster.nodes[1]
    assert await waits_for_a_standby(own_cluster) is True
    bank = await bank_through_a_failover(
        lambda servers: LostNodeBank(
            servers, own_cluster, Cluster.kill_standby, "kill -9 of the standby, left down"
        ),
        own_cluster,
    )
    assert bank.killed == standby.name
    assert own_cluster.states()[own_cluster.nodes[0].name] == "wait_primary"
    assert await waits_for_a_standby(own_cluster) is False  # readiness says so
    # The monitor gives up on a node after about 3 s here; the COMMITs that waited are
    # then answered, none of them after its statement's limit (20 s).
    assert bank.recovered() < 15


async def waits_for_a_standby(db: Cluster) -> bool | None:
    """What readiness (and its metric) says: whether a commit waits for a standby."""
    engine = create_engine(db.url, pool_size=1)
    try:
        return (await database_status(engine, head_revision())).synchronous
    finally:
        await engine.dispose()
