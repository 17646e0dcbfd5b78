"""Entries no longer check their transaction by a foreign key.

The check ran a lookup and a row lock (FOR KEY SHARE, a WAL record of its own) on the
transaction of every entry written: about a tenth of PostgreSQL's CPU in a batch of
movements (bench/RESULTS.md). It guarded nothing the ledger does not guard already:
a transaction and its entries are written by one statement from one write set, whose
counts are checked; both tables are append-only (their triggers refuse UPDATE and
DELETE), so no entry can lose its transaction later; and the test suites read the
whole ledger back and check that every entry's transaction exists.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ACCESS EXCLUSIVE for an instant: dropping a constraint scans nothing.
    op.execute("ALTER TABLE entries DROP CONSTRAINT entries_transaction_id_fkey")


def downgrade() -> None:
    # NOT VALID: checks new rows at once, scans nothing (VALIDATE it apart if wanted).
    op.execute(
        "ALTER TABLE entries ADD CONSTRAINT entries_transaction_id_fkey"
        " FOREIGN KEY (transaction_id) REFERENCES transactions (id) NOT VALID"
    )
