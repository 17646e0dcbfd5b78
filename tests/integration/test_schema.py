"""schema.sql is the final DDL: it must build exactly what the migrations build."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from adapters.postgres.engine import create_engine, migrate
from adapters.postgres.movements import _LOCK
from adapters.postgres.reports import PostgresRevenueReports
from tests import postgres
from tests.ledger_view import PostgresLedgerView, check_invariants

pytestmark = pytest.mark.postgres

SCHEMA_SQL = Path(__file__).resolve().parents[2] / "schema.sql"

CATALOG = {
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity
        FROM information_schema.columns WHERE table_schema = 'public'
          AND table_name <> 'alembic_version'
        ORDER BY table_name, column_name""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
          AND conrelid::regclass::text <> 'alembic_version'
        ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND tablename <> 'alembic_version' ORDER BY 1, 2""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
        FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2""",
    # What no catalog query shows: the oldest code the schema keeps working (its one
    # row: schema.sql must say what the migrations set) and who may read it.
    "floor": """
        SELECT oldest_code, (SELECT relacl::text FROM pg_class
          WHERE oid = 'schema_floor'::regclass) FROM schema_floor""",
    "functions": """
        SELECT proname, pg_get_functiondef(oid) FROM pg_proc
        WHERE pronamespace = 'public'::regnamespace ORDER BY 1""",
}


async def catalog(url: str) -> dict[str, list[tuple[object, ...]]]:
    db = await asyncpg.connect(url)
    try:
        return {name: [tuple(r) for r in await db.fetch(q)] for name, q in CATALOG.items()}
    finally:
        await db.close()


async def test_schema_sql_equals_the_migrations(pg_server: str) -> None:
    migrated, scripted = postgres.unique_name(), postgres.unique_name()
    migrated_url = await postgres.create_database(pg_server, migrated)
    scripted_url = await postgres.create_database(pg_server, scripted)
    try:
        await migrate(migrated_url)
        db = await asyncpg.connect(scripted_url)
        try:
            await db.execute(SCHEMA_SQL.read_text())
        finally:
            await db.close()
        from_migrations, from_script = await catalog(migrated_url), await catalog(scripted_url)
        assert from_migrations["columns"], "the migrations built nothing"
        assert from_script == from_migrations
    finally:
        await postgres.drop_database(pg_server, migrated)
        await postgres.drop_database(pg_server, scripted)


async def test_two_servers_migrating_at_once_migrate_once(pg_server: str, pg_url: str) -> None:
    name = postgres.unique_name()
    url = await postgres.create_database(pg_server, name)
    try:
        await asyncio.gather(migrate(url), migrate(url), migrate(url))
        assert await catalog(url) == await catalog(pg_url)
    finally:
        await postgres.drop_database(pg_server, name)


async def test_migrating_twice_changes_nothing(pg_url: str) -> None:
    before = await catalog(pg_url)
    await migrate(pg_url)
    assert await catalog(pg_url) == before


async def test_the_ledger_is_append_only(pg_url: str) -> None:
    await postgres.truncate(pg_url)
    db = await asyncpg.connect(pg_url)
    try:
        tx = await db.fetchval("INSERT INTO transactions (kind) VALUES ('deposit') RETURNING id")
        await db.execute(
            "INSERT INTO entries (transaction_id, account, kind, amount, created_at)"
            " VALUES ($1, 'external', 'deposit', -1, now())",
            tx,
        )
        for statement in [
            "UPDATE entries SET amount = 5",
            "DELETE FROM entries",
            "UPDATE transactions SET description = 'x'",
            "DELETE FROM transactions",
        ]:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await db.execute(statement)
        assert await db.fetchval("SELECT amount FROM entries") == -1
    finally:
        await db.close()


async def test_batches_take_transaction_ids_from_the_identity_sequence(pg_url: str) -> None:
    """The lock statement names the sequence as a constant (movements.py): it must be
    the one the identity column draws from, or a batch's ids would collide with the
    ids of rows inserted without them."""
    db = await asyncpg.connect(pg_url)
    try:
        found = await db.fetchval("SELECT pg_get_serial_sequence('transactions', 'id')")
    finally:
        await db.close()
    assert found == "public.transactions_id_seq"
    assert "nextval('transactions_id_seq'::regclass)" in _LOCK.text


async def test_an_entry_without_its_transaction_fails_the_ledger_check(pg_url: str) -> None:
    """No foreign key checks an entry's transaction (migration 0011): the ledger check
    that every suite runs does, on what is stored."""
    await postgres.truncate(pg_url)
    db = await asyncpg.connect(pg_url)
    try:
        tx = await db.fetchval("INSERT INTO transactions (kind) VALUES ('deposit') RETURNING id")
        for amount in (-1, 1):
            await db.execute(
                "INSERT INTO entries (transaction_id, account, kind, amount, created_at)"
                " VALUES ($1, 'external', 'deposit', $2, now())",
                tx,
                amount,
            )
        check_invariants(await PostgresLedgerView(pg_url).snapshot())
        await db.execute(
            "INSERT INTO entries (transaction_id, account, kind, amount, created_at)"
            " VALUES ($1, 'external', 'deposit', 1, now()), ($1, 'external', 'deposit', -1, now())",
            tx + 1,
        )
        with pytest.raises(AssertionError, match=str(tx + 1)):
            check_invariants(await PostgresLedgerView(pg_url).snapshot())
    finally:
        await db.close()


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO accounts (user_id, available) VALUES (1, -1)",
        "INSERT INTO accounts (user_id, reserved) VALUES (1, -1)",
        "INSERT INTO accounts (user_id) VALUES (0)",
        "INSERT INTO reservations (order_id, user_id, service_id, amount, created_at)"
        " VALUES (1, 1, 1, 0, now())",
    ],
)
async def test_checks_are_the_last_line_of_defence(pg_url: str, statement: str) -> None:
    await postgres.truncate(pg_url)
    db = await asyncpg.connect(pg_url)
    try:
        await db.execute("INSERT INTO accounts (user_id) VALUES (1) ON CONFLICT DO NOTHING")
        with pytest.raises(asyncpg.CheckViolationError):
            await db.execute(statement)
    finally:
        await db.close()


async def test_a_report_is_answered_after_a_migration_changed_a_column_it_returns(
    pg_server: str,
) -> None:
    """A rolling deploy: the new release's migration widens a column while the old
    release's connections hold the report's prepared statement, whose result type
    that changes."""
    name = postgres.unique_name()
    url = await postgres.create_database(pg_server, name)
    engine = create_engine(url, pool_size=1)  # one connection, its statements cached
    try:
        await migrate(url)
        reports = PostgresRevenueReports(engine)
        since, until = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
        assert await reports.totals(since, until) == []
        db = await asyncpg.connect(url)
        try:
            await db.execute("ALTER TABLE services ALTER COLUMN name TYPE varchar(300)")
        finally:
            await db.close()
        assert await reports.totals(since, until) == []
    finally:
        await engine.dispose()
        await postgres.drop_database(pg_server, name)
