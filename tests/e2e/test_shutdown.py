"""SIGTERM while requests are in flight: every request the server took is answered,
then the pool closes and the process exits cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import httpx
import pytest

from tests import postgres
from tests.servers import ServerProcess

pytestmark = pytest.mark.postgres


async def test_sigterm_loses_no_request_in_flight(pg_server: str) -> None:
    name = postgres.unique_name()
    url = await postgres.create_database(pg_server, name)
    server = ServerProcess({"DATABASE_URL": url}, workers=2)
    answered: list[str] = []
    failed: list[str] = []
    try:
        await asyncio.to_thread(server.start)
        stop_at = time.monotonic() + 1.5
        limits = httpx.Limits(max_keepalive_connections=0)

        async def client(number: int, api: httpx.AsyncClient) -> None:
            sent = 0
            while time.monotonic() < stop_at + 2:
                sent += 1
                key = f"shutdown-{number}-{sent}"
                body = {"user_id": number, "amount": "1.00", "description": key}
                try:
                    response = await api.post("/v1/deposits", json=body)
                except httpx.TransportError:
                    failed.append(key)
                    return  # the server is going away
                assert response.status_code == 201, response.text
                answered.append(key)

        async def terminate() -> None:
            await asyncio.sleep(stop_at - time.monotonic())
            server.signal_term()

        async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as api:
            await asyncio.gather(terminate(), *(client(n, api) for n in range(1, 33)))
        assert await asyncio.to_thread(server.wait, 60) == 0
        assert len(answered) > 50

        db = await asyncpg.connect(url)
        try:
            written = {
                r["description"] for r in await db.fetch("SELECT description FROM transactions")
            }
            left = await db.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = 'balance'"
            )
        finally:
            await db.close()
        assert set(answered) <= written
        lost = [key for key in failed if key in written]
        assert lost == [], "written but never answered"
        assert left == 0, "the pool was not closed"
    finally:
        with contextlib.suppress(Exception):
            server.kill()
        await postgres.drop_database(pg_server, name)
