"""Validate the checks 0007 added NOT VALID, each a scan that lets writes go on.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CHECKS = (
    ("accounts", "accounts_available_within_limit"),
    ("accounts", "accounts_credit_limit_check"),
    ("transactions", "transactions_kind_check"),
    ("entries", "entries_kind_check"),
    ("entries", "entries_reserved_never_negative"),
)


def upgrade() -> None:
    for table, constraint in CHECKS:
        op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {constraint}")


def downgrade() -> None:
    pass  # a valid constraint stays valid
