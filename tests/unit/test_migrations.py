"""Migrations keep the ledger writable (migrations/README.md): a constraint on an
existing table is added NOT VALID and validated by a later migration, in a
transaction of its own, so no migration scans a big table under an exclusive lock.
Read from the SQL each migration runs (Alembic's offline mode): no database needed."""

from __future__ import annotations

import io
import re

from alembic import command
from alembic.config import Config

from adapters.postgres.revisions import MIGRATIONS

ALTER = re.compile(r"ALTER TABLE (\w+)([^;]*);", re.S)
CLAUSE = re.compile(r"ADD CONSTRAINT (\w+) (CHECK|FOREIGN KEY)(.*?)(?=ADD CONSTRAINT|$)", re.S)
VALIDATED = re.compile(r"ALTER TABLE (\w+) VALIDATE CONSTRAINT (\w+);")


def constraints_added(sql: str) -> list[tuple[str, str, bool]]:
    """(table, constraint, whether NOT VALID) of each CHECK or FOREIGN KEY added."""
    return [
        (table, name, "NOT VALID" in rest)
        for table, body in ALTER.findall(sql)
        for name, _, rest in CLAUSE.findall(body)
    ]


def transactions(since: str = "base") -> list[str]:
    """The SQL of each migration's transaction, in order."""
    out = io.StringIO()
    config = Config(str(MIGRATIONS / "alembic.ini"), output_buffer=out)
    config.set_main_option("script_location", str(MIGRATIONS))
    command.upgrade(config, f"{since}:head", sql=True)
    return [part for part in out.getvalue().split("COMMIT;") if "Running upgrade" in part]


def test_each_migration_runs_in_a_transaction_of_its_own() -> None:
    sql = transactions()
    assert len(sql) >= 6
    assert all(part.count("BEGIN;") == 1 and part.count("Running upgrade") == 1 for part in sql)


def test_constraints_on_existing_tables_are_added_not_valid_then_validated_later() -> None:
    added: dict[str, int] = {}
    for index, part in enumerate(transactions()):
        for table, name, not_valid in constraints_added(part):
            assert not_valid, f"{table}.{name} is added VALID: it scans {table}"
            added[name] = index
        for _, name in VALIDATED.findall(part):
            assert name in added, f"{name} validated but never added NOT VALID"
            assert added.pop(name) < index, f"{name} validated in the transaction adding it"
    assert not added, f"added NOT VALID and never validated: {sorted(added)}"


def test_the_rule_catches_a_constraint_added_valid() -> None:
    assert constraints_added("ALTER TABLE entries ADD CONSTRAINT x CHECK (amount <> 0);") == [
        ("entries", "x", False)
    ]
    both = (
        "ALTER TABLE a DROP CONSTRAINT x, ADD CONSTRAINT x CHECK (k IN ('a')) NOT VALID,"
        " ADD CONSTRAINT y CHECK (v > 0);"
    )
    assert constraints_added(both) == [("a", "x", True), ("a", "y", False)]
