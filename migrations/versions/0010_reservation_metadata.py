"""A reservation keeps the metadata of the request that made it, so that reading it
(GET /v1/reservations/{id}) answers with it.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: a catalog change, no table rewrite and no scan. Rows from
    # before (and from servers still on 0009 during a rolling deploy) read as {}.
    op.execute("ALTER TABLE reservations ADD COLUMN metadata JSONB")


def downgrade() -> None:
    op.execute("ALTER TABLE reservations DROP COLUMN metadata")
