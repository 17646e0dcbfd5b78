"""Transactions and events name their caller: the named token the request came with.

BALANCE_API_TOKENS may name the caller a token stands for (`token=read+write@billing`).
Each ledger transaction and each event records that name, so the ledger says which
calling service moved the money, or set a user's limits. NULL: an unnamed token, no
auth, or the service's own doing (an expiry), and every row written before this.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column with no default: a catalog change, no table rewrite. The code
    # before it names its columns, so it goes on writing (NULL) during a rolling deploy.
    op.execute("ALTER TABLE transactions ADD COLUMN caller TEXT")
    op.execute("ALTER TABLE events ADD COLUMN caller TEXT")


def downgrade() -> None:
    op.execute("ALTER TABLE events DROP COLUMN caller")
    op.execute("ALTER TABLE transactions DROP COLUMN caller")
