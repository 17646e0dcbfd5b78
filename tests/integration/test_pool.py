"""The worker's connections are handed out in the order they were asked for, and a
wait for one has an end."""

from __future__ import annotations

import asyncio

import pytest

from adapters.postgres.engine import create_engine
from adapters.postgres.session import Session
from application.errors import StoreUnavailable

pytestmark = pytest.mark.postgres


async def test_connections_go_to_the_waiters_in_the_order_they_asked(pg_url: str) -> None:
    """A request that gives its connection back and at once asks again (a worker's
    next read) queues behind those already waiting. SQLAlchemy's pool alone lets it
    take the connection back before the waiter it woke runs: one task then held the
    only connection for all its rounds (`aaaaabbbbb...`), and under load a request
    could lose its turn again and again."""
    engine = create_engine(pg_url, pool_size=1)
    served: list[str] = []

    async def reader(name: str) -> None:
        for _ in range(5):
            async with Session(engine) as session:
                served.append(name)
                await session.db.connection.fetchval("SELECT 1")

    try:
        await asyncio.gather(*(reader(name) for name in "abcd"))
    finally:
        await engine.dispose()
    assert "".join(served) == "abcd" * 5


async def test_a_request_that_finds_no_connection_in_time_is_told_so(pg_url: str) -> None:
    engine = create_engine(pg_url, pool_size=1, wait=0.2)
    try:
        async with Session(engine):
            with pytest.raises(StoreUnavailable, match="no database connection free"):
                async with Session(engine):
                    pass
        async with Session(engine) as session:  # the refused wait took nothing with it
            assert await session.db.connection.fetchval("SELECT 1") == 1
    finally:
        await engine.dispose()
