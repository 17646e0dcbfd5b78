"""Validate the checks 0005 widened NOT VALID: a scan of each table under SHARE UPDATE
EXCLUSIVE, which lets reads and writes go on (a database already past 0005 finds
them valid: nothing to scan).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CHECKS = (
    ("transactions", "transactions_kind_check"),
    ("entries", "entries_kind_check"),
    ("reservations", "reservations_status_check"),
)


def upgrade() -> None:
    for table, constraint in CHECKS:
        op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {constraint}")


def downgrade() -> None:
    pass  # a valid constraint stays valid
