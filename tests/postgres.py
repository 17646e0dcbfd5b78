"""A throwaway PostgreSQL database for a test run: the given server, or an embedded one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import asyncpg

from adapters.embedded.server import EmbeddedPostgres
from adapters.postgres.hosts import hosts_of

LEDGER_TABLES = (
    "accounts, transactions, entries, transaction_tags, reservations, idempotency_keys, services,"
    " events"
)


@contextmanager
def embedded_data() -> Iterator[Path]:
    """A folder for an embedded server's data, removed afterwards: outside pytest's
    temporary root, which a second pytest run started meanwhile makes its owner's
    alone (0700), while the embedded server runs as a user of its own."""
    folder = Path(tempfile.mkdtemp(prefix="balance-test-pg-"))
    try:
        yield folder / "pgdata"
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # a run leaves no database behind


@contextmanager
def server_url() -> Iterator[str]:
    """TEST_DATABASE_URL when set (CI: the machine's server), else an embedded server."""
    if os.environ.get("BALANCE_TEST_NO_POSTGRES"):
        raise RuntimeError("make test-fast starts no PostgreSQL: mark this test postgres")
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    with embedded_data() as data:
        embedded = EmbeddedPostgres(data)
        try:
            yield embedded.start()
        finally:
            embedded.stop()


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def unique_name() -> str:
    return f"balance_test_{os.getpid()}_{secrets.token_hex(4)}"


async def create_database(url: str, name: str) -> str:
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return with_database(url, name)


async def drop_database(url: str, name: str) -> None:
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def written_ahead(url: str, ahead: timedelta, user_ids: int | tuple[int, ...]) -> None:
    """The users' ledger so far as a server whose clock was `ahead` of this one's wrote
    it (an old primary, before a failover to this one): the times of the transactions
    with an entry of theirs (their entries' and tags' too), each moved once, and their
    rows' `updated_at`, moved forward (the append-only triggers off for the moment)."""
    users = [user_ids] if isinstance(user_ids, int) else list(user_ids)
    connection = await asyncpg.connect(url)
    theirs = "(SELECT transaction_id FROM entries WHERE user_id = ANY($2::bigint[]))"
    try:
        async with connection.transaction():
            for table, key in (("entries", "transaction_id"), ("transactions", "id")):
                await connection.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
                await connection.execute(
                    f"UPDATE {table} SET created_at = created_at + $1 WHERE {key} IN {theirs}",
                    ahead,
                    users,
                )
                await connection.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
            await connection.execute(  # a tag is stamped as its transaction is
                f"UPDATE transaction_tags SET created_at = created_at + $1"
                f" WHERE transaction_id IN {theirs}",
                ahead,
                users,
            )
            await connection.execute(
                "UPDATE accounts SET updated_at = updated_at + $1"
                " WHERE user_id = ANY($2::bigint[])",
                ahead,
                users,
            )
    finally:
        await connection.close()


async def make_due(url: str, order_id: int) -> None:
    """A reservation due now: its expires_at just past the server's clock."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "UPDATE reservations SET expires_at = clock_timestamp() - interval '1 millisecond'"
            " WHERE order_id = $1",
            order_id,
        )
    finally:
        await connection.close()


async def truncate(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f"TRUNCATE {LEDGER_TABLES} RESTART IDENTITY CASCADE")
        await connection.execute("UPDATE event_counter SET last_id = 0")
        await connection.execute(
            "UPDATE event_relay SET sent_upto = 0, holder = NULL, lease_until = NULL, broker = NULL"
        )
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[str, list[asyncio.StreamWriter]]]:
    """A listener that takes every connection and never says a thing, as a host gone
    without a word does (a crashed machine, a partition): its URL, and the connections
    it took (one per connect that reached it)."""
    held: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # kept open, never written to

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"postgresql://balance@127.0.0.1:{port}/balance", held
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def behind(first: str, url: str, *, primary: bool = True) -> str:
    """`url`'s database behind a host list whose first entry is `first`'s TCP host, and
    asking for the primary (unless not `primary`): as a failover cluster's URL lists
    its nodes."""
    (host, port), parts, before = hosts_of(url)[0], urlsplit(url), urlsplit(first)
    user = parts.netloc.rpartition("@")[0]
    query = {k: v[-1] for k, v in parse_qs(parts.query).items() if k not in ("host", "port")}
    query |= {
        "host": f"{before.hostname},{host}",  # then TCP or a socket's folder
        "port": f"{before.port},{port or 5432}",
    }
    if primary:
        query["target_session_attrs"] = "read-write"
    return urlunsplit(parts._replace(netloc=f"{user}@" if user else "", query=urlencode(query)))
