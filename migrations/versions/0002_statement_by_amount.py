"""Statements sorted by amount: keyset pages by (user_id, abs(amount), id).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX entries_user_by_amount ON entries (user_id, abs(amount), id)"
        " WHERE user_id IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX entries_user_by_amount")
