"""Engine creation and migrations for a PostgreSQL URL."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import asyncpg
from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.postgres.events import PostgresOutbox
from adapters.postgres.hosts import Hosts
from adapters.postgres.revisions import (
    FLOOR_SQL,
    SchemaTooNew,
    alembic_config,
    behind,
    known_revisions,
    too_old,
)
from adapters.postgres.session import Engine, ListeningConnection
from adapters.postgres.sql import compile_sql
from application.errors import StoreUnavailable
from application.ports import DatabaseStatus

logger = logging.getLogger("balance.migrate")


SERVER_SETTINGS = {
    "application_name": "balance",
    # A batch's statements follow one another within milliseconds; a session idle
    # inside its transaction for seconds belongs to a worker that froze or lost its
    # network between its write and its commit, and holds the event counter's row
    # that every batch writing events needs: ended after 5 s, not a minute
    # (tests/integration/test_stalled_batch.py).
    "idle_in_transaction_session_timeout": "5s",
}
CONNECT_TIMEOUT = 3.0
"""Seconds a new connection may take, for each host of the URL (as libpq's
connect_timeout: `open_connection`). A healthy server answers in milliseconds; one
whose host is gone without a word (a crashed machine, a partition: no refusal ever
comes) held a request for asyncpg's default of 60 s per attempt: it is answered 503
within seconds instead (and the batch does not try again after an attempt that took
seconds to fail: `MoneyMovements`' retry_within)."""
ADMIN_CONNECT_TIMEOUT = 10.0
"""The same for the once-only work (migrations, grants, pruning), which nothing waits
behind."""
COMMAND_TIMEOUT = 20.0
"""Seconds one statement may take before asyncpg gives up on it (and the connection,
which is never used again: a 503, or the batch's next attempt). A network gone silent
after the connection was made (a partition, a frozen host) sends no error: without a
limit a request waited until TCP gave up, minutes later, and every request behind it
for the pool's 30 s. Above anything a statement waits for on purpose: a row another
transaction holds (`lock_timeout`, 10 s), a lane's wait for its row (the same), a
batch's statement (milliseconds), a statement page or a report's next rows."""
TCP_USER_TIMEOUT = 5.0
"""Seconds that what the service sent on a TCP connection may go unacknowledged, or an
idle connection's keepalive probes unanswered, before the kernel ends the connection
(`TCP_USER_TIMEOUT`, libpq's `tcp_user_timeout`; SO_KEEPALIVE probes after
`KEEPALIVE_IDLE` s idle, then every second). A server's kernel acknowledges a packet
in microseconds whatever its PostgreSQL is doing, a statement that waits for a row
included; 5 s without one is a network cut or a machine gone. Without it, a statement
sent into a partition waited out its `COMMAND_TIMEOUT` (20 s) and an idle pooled
connection was found dead only when used: a primary cut off held every request in
flight on it for 20 s, where this ends them in 5 (`make test-ha`: the cut-off primary).
A frozen process whose kernel still answers (SIGSTOP) is left to `COMMAND_TIMEOUT`."""
KEEPALIVE_IDLE = 5
"""Seconds a pooled connection may sit idle before its first keepalive probe."""


def admin_engine(url: str) -> AsyncEngine:
    """One connection at a time for the once-only work (migrations, grants, pruning),
    opened by asyncpg from the URL as given, several hosts included."""
    dsn = libpq_url(url)

    async def connect() -> asyncpg.Connection:
        return await open_connection(dsn, per_host=ADMIN_CONNECT_TIMEOUT)

    return create_async_engine("postgresql+asyncpg://", async_creator=connect, pool_size=1)


def create_engine(
    url: str,
    pool_size: int = 10,
    lock_timeout: str = "10s",
    *,
    pooler: bool = False,
    wait: float = 30.0,
    connect_timeout: float = CONNECT_TIMEOUT,
    command_timeout: float | None = COMMAND_TIMEOUT,
    rest_after_timeout: float = 1.0,
) -> Engine:
    """A pool of `pool_size` asyncpg connections, each opened by asyncpg from the URL as
    given: several hosts and `target_session_attrs=read-write` find the primary.

    lock_timeout: a wait longer than this is a stuck request; fail it (409 for a busy
    idempotency key, 503 otherwise) rather than let requests pile up. `pooler`:
    behind PgBouncer in transaction mode, keep no session state: no statement cache
    and no startup settings but the application name (set the timeouts on the role:
    `ALTER ROLE ... SET lock_timeout = '10s'`). `wait`: how long a request waits for
    a connection before it is answered 503; `connect_timeout`: how long opening one
    may take; `command_timeout`: how long one statement may take (None: no limit);
    `rest_after_timeout`: how long after a connect that timed out no new one is tried
    (checkouts that need one are 503 at once; idle connections are still handed out)."""
    dsn = libpq_url(url)
    settings = {"application_name": "balance"}
    if not pooler:
        settings |= {**SERVER_SETTINGS, "lock_timeout": lock_timeout}

    hosts = Hosts(dsn)

    async def connect() -> asyncpg.Connection:
        return await open_connection(
            dsn,
            per_host=connect_timeout,
            hosts=hosts,
            server_settings=settings,
            statement_cache_size=0 if pooler else 100,
            command_timeout=command_timeout,
            connection_class=ListeningConnection,  # hears a COMMIT's WARNING (Session.commit)
        )

    return Engine(connect, size=pool_size, wait=wait, rest_after_timeout=rest_after_timeout)


_NEXT_HOST = (
    TimeoutError,  # gone without a word
    OSError,  # refused, unreachable, no such name
    asyncpg.CannotConnectNowError,  # starting up, shutting down
    asyncpg.TargetServerAttributeNotMatched,  # a standby, for read-write
)


async def open_connection(
    dsn: str, *, per_host: float, hosts: Hosts | None = None, **options: Any
) -> asyncpg.Connection:
    """asyncpg's connection to the first of the URL's hosts that takes it (`Hosts`
    orders them: a host that timed out last goes last), each given `per_host`
    seconds, as libpq gives each host its connect_timeout.

    asyncpg gives its timeout to all of a URL's hosts together, so a first host gone
    without a word (the old primary's machine, crashed or cut off) used up all of it
    and the next host, the new primary, was never asked: after such a failover not
    one connection could be opened, nor could `balance migrate` run. A host that
    refuses or is not the primary is passed over at once, as before; any other
    failure (a wrong password) is final, as in libpq."""
    hosts = hosts or Hosts(dsn)
    if len(hosts.listed) < 2:
        return keep_alive(await asyncpg.connect(dsn, timeout=per_host, **options))
    failure: Exception | None = None
    for host in hosts.in_turn():
        try:
            connection = await asyncpg.connect(
                dsn, host=host[0], port=host[1], timeout=per_host, **options
            )
        except _NEXT_HOST as error:
            failure = error
            if isinstance(error, TimeoutError):
                hosts.timed_out(host)
        else:
            hosts.took(host)
            return keep_alive(connection)
    assert failure is not None
    raise failure


def keep_alive(connection: asyncpg.Connection) -> asyncpg.Connection:
    """The connection, its TCP socket set to give up on a silent network after
    `TCP_USER_TIMEOUT` (as libpq's `keepalives` and `tcp_user_timeout`, which asyncpg
    does not have). A unix socket has no network to lose. asyncpg keeps the socket in
    its transport; tests/integration/test_frozen_network.py reads the options back, so
    an asyncpg that moved it fails there."""
    transport = getattr(connection, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", 1),
        ("TCP_USER_TIMEOUT", int(TCP_USER_TIMEOUT * 1000)),
    ):
        if hasattr(socket, option):  # Linux has all three; other systems may not
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    return connection


def libpq_url(url: str) -> str:
    """The URL as libpq (and asyncpg) read it."""
    scheme, rest = url.split("://", 1)
    if scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
        raise ValueError(f"not a PostgreSQL URL: {scheme}://...")
    return f"postgresql://{rest}"


_STATUS = compile_sql(
    text(
        "SELECT version_num, pg_is_in_recovery() AS standby,"
        " coalesce(host(inet_server_addr()) || ':' || inet_server_port(), 'a local socket')"
        " AS server,"
        # What a COMMIT waits for: pg_auto_failover empties the standby names when the
        # standby is lost (wait_primary), so writes go on, on one server.
        " current_setting('synchronous_standby_names') <> ''"
        " AND current_setting('synchronous_commit') NOT IN ('off', 'local') AS synchronous"
        " FROM alembic_version"
    )
)


async def schema_too_new(url: str, *, pooler: bool = False) -> str | None:
    """Why this code must not serve on the database's schema (a later version's whose
    floor it does not know), for a start that migrates nothing; None: it may, or the
    schema cannot be read now (a server still starting, none migrated yet): readiness
    says so until it can. One connection of the pool's kind, its timeouts too."""
    engine = create_engine(url, pool_size=1, pooler=pooler)
    try:
        async with PostgresOutbox(engine) as outbox:
            return await outbox.refusal()
    except Exception as error:
        logger.warning("could not read the schema's revision at start: %s", error)
        return None
    finally:
        await engine.dispose()


async def database_status(engine: Engine, head: str) -> DatabaseStatus:
    """Ready when the server answers, is the primary, and its schema is at `head`; with
    the outbox's state, read on the same connection once the schema is known to have it."""
    try:
        async with PostgresOutbox(engine) as outbox:
            row = await outbox.db.row(_STATUS)
            assert row is not None
            role = "standby" if row["standby"] else "primary"
            if row["standby"]:
                problem = "connected to a standby: no primary reachable"
                return DatabaseStatus(role, row["server"], problem)
            # Behind this code: not ready. Ahead (a later version's migration, run by
            # its first server in a rolling deploy): ready, since a migration keeps the
            # version before it working (migrations/README.md); else every server still
            # on it would leave the load balancer at once, with the new ones starting.
            # Unless the schema names, as the oldest code it keeps working, a revision
            # newer than this code's: then this server is too old for it.
            version = row["version_num"]
            if behind(version):
                problem = f"schema at {version}, needs {head}"
                return DatabaseStatus(role, row["server"], problem)
            if version not in known_revisions() and (refusal := await outbox.refusal()):
                return DatabaseStatus(role, row["server"], refusal)
            return DatabaseStatus(
                role,
                row["server"],
                events=await outbox.state(),
                synchronous=row["synchronous"],
                schema=version,
                code_schema=head,
            )
    except StoreUnavailable as error:  # the pool's own words: why it could not connect
        return DatabaseStatus("unreachable", "", str(error))
    except Exception as error:
        return DatabaseStatus("unreachable", "", f"database unreachable: {type(error).__name__}")


def _upgrade(connection: Connection) -> None:
    current = MigrationContext.configure(connection).get_current_revision()
    if current is not None and current not in known_revisions():
        # A later version migrated it (a rolling deploy): this one runs on it as it is
        # (migrations/README.md, rule 4), if it is not too old for it (rule 5); Alembic
        # would stop at a revision it cannot find.
        floor = connection.execute(text(FLOOR_SQL)).scalar()
        if problem := too_old(current, floor):
            raise SchemaTooNew(problem)
        logger.warning("the schema is at %s, a later version's: nothing to migrate", current)
        return
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def wait_for_database(url: str, seconds: float) -> None:
    """Until PostgreSQL accepts a connection, or `seconds` passed. A server still
    starting (a container's first start runs initdb and its init scripts first) is
    waited for, not taken for a failure, as is a URL whose hosts are all standbys for
    now (a failover under way). A refusal that waiting will not mend (a wrong
    password, an unknown database) raises at once."""
    deadline = time.monotonic() + seconds
    pause = 0.1
    dsn = libpq_url(url)
    hosts = Hosts(dsn)
    while True:
        try:
            connection = await open_connection(dsn, per_host=5, hosts=hosts)
        except _NEXT_HOST as error:  # no host took it yet (a failover: no primary yet)
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            logger.info("PostgreSQL does not answer yet (%s): trying again", error)
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 2.0)
        else:
            await connection.close()
            return


async def migrate(url: str, wait: float = 0) -> None:
    """Bring the database to the newest schema (Alembic), each migration in a
    transaction of its own: a constraint added NOT VALID in one is validated by a
    later one without holding the first one's exclusive lock (migrations/README.md).
    `wait`: seconds to wait for the server to accept connections first."""
    if wait:
        await wait_for_database(url, wait)
    engine = admin_engine(url)
    try:
        async with engine.connect() as connection:
            # Two processes starting at once: the second waits, then finds nothing to do.
            await connection.execute(text("SELECT pg_advisory_lock(7270012022)"))
            await connection.commit()
            try:
                await connection.run_sync(_upgrade)
            finally:
                await connection.execute(text("SELECT pg_advisory_unlock(7270012022)"))
                await connection.commit()
    finally:
        await engine.dispose()


# Least privilege for the role the service runs as: the ledger (transactions,
# entries) can be read and appended to, never changed; no DDL, no TRUNCATE.
APP_GRANTS = (
    "GRANT USAGE ON SCHEMA public TO {role}",
    "GRANT SELECT, INSERT ON transactions, entries, transaction_tags TO {role}",
    # A batch takes its transaction ids after its locks (movements.py: _STAMP).
    "GRANT USAGE ON SEQUENCE transactions_id_seq TO {role}",
    "GRANT SELECT, INSERT, UPDATE ON accounts, reservations, idempotency_keys, services TO {role}",
    "GRANT SELECT ON alembic_version TO {role}",
    # The outbox: appended to by batches, read by the pull API and the relay, pruned
    # once sent; the counter and the relay's row are updated in place.
    "GRANT SELECT, INSERT, DELETE ON events TO {role}",
    "GRANT SELECT, UPDATE ON event_counter, event_relay TO {role}",
    "REVOKE UPDATE, DELETE, TRUNCATE ON transactions, entries, transaction_tags FROM {role}",
)


async def grant_app_role(url: str, role: str) -> None:
    """Give `role` (which must exist) exactly what the service needs."""
    if not role.replace("_", "").isalnum() or not role.isascii() or role[0].isdigit():
        raise ValueError(f"not a plain role name: {role!r}")
    engine = admin_engine(url)
    try:
        async with engine.begin() as connection:
            for grant in APP_GRANTS:
                await connection.execute(text(grant.format(role=f'"{role}"')))
    finally:
        await engine.dispose()
