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
TCP_USER_TIMEOUT)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from adapters.postgres.engine import COMMAND_TIMEOUT, TCP_USER_TIMEOUT, migrate
from tests.bank.workload import Settings
from tests.ha.cluster import Cluster, cluster, kill_all_of
from tests.ha.test_failover import FailoverBank, bank_through_a_failover

pytestmark = pytest.mark.ha


class FrozenPrimaryBank(FailoverBank):
    """The bank workload; its one fault: the primary frozen a third into the run."""

    async def _inject_faults(self, deadline: float) -> None:
        await self._sleep_until(time.monotonic() + self.settings.seconds / 3)
        self.killed = (await asyncio.to_thread(self.cluster.stop_primary)).name
        self.killed_at = time.monotonic()
        self.run.faults["the primary frozen (SIGSTOP), left frozen"] += 1
        await self._sleep_until(deadline)


@pytest.fixture(scope="module")
def frozen_cluster() -> Iterator[Cluster]:
    with cluster() as found:
        asyncio.run(migrate(found.url))
        yield found


async def test_a_primary_gone_without_a_word_is_failed_over_and_nothing_acknowledged_is_lost(
    frozen_cluster: Cluster,
) -> None:
    primary = frozen_cluster.primary()
    assert primary is frozen_cluster.nodes[0]  # listed first in the URL
    bank = await bank_through_a_failover(
        lambda servers: FrozenPrimaryBank(
            Settings(seconds=60, clients=32), servers, frozen_cluster
        ),
        frozen_cluster,
        # The machine never comes back: the checks read the new primary alone.
        before_the_checks=lambda: kill_all_of(primary),
    )
    assert bank.killed == primary.name
    # Detection and promotion take about 8 s here; a statement on a connection to the
    # frozen primary gives up after its 20 s (command_timeout).
    assert bank.recovered() < 35


class CutOffPrimaryBank(FailoverBank):
    """The bank workload; its one fault: the primary cut off the network a third into
    the run, and left so."""

    async def _inject_faults(self, deadline: float) -> None:
        await self._sleep_until(time.monotonic() + self.settings.seconds / 3)
        self.killed = (await asyncio.to_thread(self.cluster.cut_off_primary)).name
        self.killed_at = time.monotonic()
        self.run.faults["the primary cut off the network (iptables), left so"] += 1
        await self._sleep_until(deadline)


@pytest.fixture(scope="module")
def cut_cluster() -> Iterator[Cluster]:
    with cluster() as found:
        asyncio.run(migrate(found.url))
        yield found


async def test_a_primary_cut_off_the_network_holds_requests_for_seconds_not_a_statement_s_limit(
    cut_cluster: Cluster,
) -> None:
    primary = cut_cluster.primary()
    assert primary is cut_cluster.nodes[0]

    def take_it_down() -> None:  # for good, before it can be reached again
        kill_all_of(primary)
        cut_cluster.reconnect()

    bank = await bank_through_a_failover(
        lambda servers: CutOffPrimaryBank(Settings(seconds=60, clients=32), servers, cut_cluster),
        cut_cluster,
        before_the_checks=take_it_down,
    )
    assert bank.killed == primary.name
    # Detection and promotion take about 8 s. The batch in flight on the cut primary
    # ends when its statement has gone TCP_USER_TIMEOUT (5 s) unacknowledged, not
    # after its COMMAND_TIMEOUT (20 s), and the next connections find the new primary
    # (the cut one's connect timeout, 3 s, once).
    assert TCP_USER_TIMEOUT < COMMAND_TIMEOUT
    assert bank.recovered() < 16
