"""The schema names the oldest code that keeps working on it: `schema_floor`.

A migration keeps the version before it working (migrations/README.md, rule 4), and
a server whose code is behind the schema stays ready and can restart. That holds one
release back. A server further behind (one left out of a deploy, a restarted old
image) may write what the schema no longer means: a movement without a column a
later invariant needs, into a table a later version stopped reading. Each schema now
names the oldest code revision that keeps every rule on it; a server whose code does
not know that revision (it is newer than its own head) is too old. It is not ready,
and it does not start (tests/e2e/test_server.py).

The code of 0012 and before does not read it: the floor protects from this version
on. 0013 only adds this table, so the code of 0012 keeps working on it.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE schema_floor (id INT PRIMARY KEY CHECK (id = 1), oldest_code TEXT NOT NULL)"
    )
    op.execute("INSERT INTO schema_floor VALUES (1, '0012')")
    # Every server reads it, whatever its role's grants (it names a revision, no more).
    op.execute("GRANT SELECT ON schema_floor TO PUBLIC")


def downgrade() -> None:
    op.execute("DROP TABLE schema_floor")
