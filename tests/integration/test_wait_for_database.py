"""`balance migrate` waits for a database that is still starting (a container's first
start), and gives up after DB_WAIT seconds."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from adapters.postgres.engine import wait_for_database
from tests.servers import free_port

pytestmark = pytest.mark.postgres


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    return f"postgresql://{user}@127.0.0.1:{port}{parts.path or '/postgres'}"


async def _open_upstream(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = (query.get("host") or [parts.hostname or "127.0.0.1"])[0]
    port = int((query.get("port") or [str(parts.port or 5432)])[0])
    if host.startswith("/"):
        return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
    return await asyncio.open_connection(host, port)


async def test_a_database_that_starts_later_is_waited_for(pg_url: str) -> None:
    """Nothing listens on the port for a second; then it forwards to the real server."""
    port = free_port()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await _open_upstream(pg_url)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def start_late() -> asyncio.Server:
        await asyncio.sleep(1.0)
        return await asyncio.start_server(forward, "127.0.0.1", port)

    started = time.monotonic()
    late = asyncio.create_task(start_late())
    await wait_for_database(_via(pg_url, port), seconds=20)
    waited = time.monotonic() - started
    server = await late
    server.close()
    assert 1.0 <= waited < 10, waited


async def test_waiting_ends_after_the_time_given() -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        await wait_for_database(f"postgresql://postgres@127.0.0.1:{free_port()}/x", seconds=1.5)
    assert 1.0 <= time.monotonic() - started < 5
