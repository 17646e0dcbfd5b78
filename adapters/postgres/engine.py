"""Engine creation and migrations for a PostgreSQL URL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, literal_column, select, table, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.postgres.session import Session
from adapters.postgres.sql import compile_sql

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"

SERVER_SETTINGS = {
    "application_name": "balance",
    "idle_in_transaction_session_timeout": "60s",
}


def async_url(url: str) -> str:
    """postgresql://... as SQLAlchemy's asyncpg URL."""
    scheme, rest = url.split("://", 1)
    if scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
        raise ValueError(f"not a PostgreSQL URL: {scheme}://...")
    return f"postgresql+asyncpg://{rest}"


# lock_timeout: a wait longer than this is a stuck request; fail it (409 for a busy
# idempotency key, 503 otherwise) rather than let requests pile up.
def create_engine(url: str, pool_size: int = 10, lock_timeout: str = "10s") -> AsyncEngine:
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        connect_args={"server_settings": {**SERVER_SETTINGS, "lock_timeout": lock_timeout}},
    )


def head_revision() -> str:
    """The newest migration this code knows."""
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


_SCHEMA_VERSION = compile_sql(
    select(literal_column("version_num")).select_from(table("alembic_version"))
)


async def schema_problem(engine: AsyncEngine, head: str) -> str | None:
    """None when the database answers and its schema is at `head`; else what is wrong."""
    try:
        async with Session(engine) as session:
            found = await session.db.value(_SCHEMA_VERSION)
    except Exception as error:
        return f"database unreachable: {type(error).__name__}"
    if found != head:
        return f"schema at {found}, this code needs {head}"
    return None


def _upgrade(connection: Connection) -> None:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(url: str) -> None:
    """Bring the database to the newest schema (Alembic), in one transaction."""
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as connection:
            # Two processes starting at once: the second waits, then finds nothing to do.
            await connection.execute(text("SELECT pg_advisory_xact_lock(7270012022)"))
            await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()


# Least privilege for the role the service runs as: the ledger (transactions,
# entries) can be read and appended to, never changed; no DDL, no TRUNCATE.
APP_GRANTS = (
    "GRANT USAGE ON SCHEMA public TO {role}",
    "GRANT SELECT, INSERT ON transactions, entries TO {role}",
    # A batch takes its transaction ids after its locks (movements.py: _STAMP).
    "GRANT USAGE ON SEQUENCE transactions_id_seq TO {role}",
    "GRANT SELECT, INSERT, UPDATE ON accounts, reservations, idempotency_keys, services TO {role}",
    "GRANT SELECT ON alembic_version TO {role}",
    "REVOKE UPDATE, DELETE, TRUNCATE ON transactions, entries FROM {role}",
)


async def grant_app_role(url: str, role: str) -> None:
    """Give `role` (which must exist) exactly what the service needs."""
    if not role.replace("_", "").isalnum() or not role.isascii() or role[0].isdigit():
        raise ValueError(f"not a plain role name: {role!r}")
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as connection:
            for grant in APP_GRANTS:
                await connection.execute(text(grant.format(role=f'"{role}"')))
    finally:
        await engine.dispose()
