"""The service catalogue: names for service ids, for reports and statements.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE services (
            service_id  BIGINT PRIMARY KEY CHECK (service_id > 0),
            name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            updated_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE services")
