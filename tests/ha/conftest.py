from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from adapters.postgres.engine import migrate
from tests.ha.cluster import Cluster, cluster


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster for one test: each loses a node for good."""
    with cluster() as found:
        asyncio.run(migrate(found.url))
        yield found
