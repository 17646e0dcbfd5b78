"""The role the service runs as can append to the ledger but never change it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from adapters.postgres.engine import create_engine, grant_app_role
from adapters.postgres.movements import PostgresMovementBatch
from application.deposit import Deposit, deposit
from application.runner import MoneyMovements
from application.withdraw import Withdraw, withdraw
from domain.money import Money
from tests import postgres
from tests.helpers import keep

pytestmark = pytest.mark.postgres


def as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


@pytest.fixture
async def app_url(pg_url: str) -> AsyncIterator[str]:
    role = f"balance_app_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(pg_url)
    await admin.execute(f"CREATE ROLE {role} LOGIN")
    try:
        await postgres.truncate(pg_url)
        await grant_app_role(pg_url, role)
        yield as_role(pg_url, role)
    finally:
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


async def test_the_app_role_moves_money(app_url: str) -> None:
    engine = create_engine(app_url)
    try:
        movements = MoneyMovements(lambda: PostgresMovementBatch(engine))
        await movements.execute(deposit, Deposit(1, Money.amount("10")), keep, "lp-1")
        await movements.execute(withdraw, Withdraw(1, Money.amount("4")), keep, "lp-2")
    finally:
        await engine.dispose()
    db = await asyncpg.connect(app_url)
    try:
        assert await db.fetchval("SELECT available FROM accounts WHERE user_id = 1") == 600
    finally:
        await db.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE entries SET amount = amount * 2",
        "DELETE FROM entries",
        "UPDATE transactions SET description = 'x'",
        "DELETE FROM transactions",
        "TRUNCATE entries",
        "DROP TABLE accounts",
        "ALTER TABLE entries DISABLE TRIGGER entries_append_only",
    ],
)
async def test_the_app_role_cannot_change_the_ledger(app_url: str, statement: str) -> None:
    db = await asyncpg.connect(app_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
            await db.execute(statement)
        # Refused by the grants, before the append-only trigger would be reached.
        assert "append-only" not in str(refused.value)
    finally:
        await db.close()
