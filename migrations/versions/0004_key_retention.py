"""Idempotency keys can be forgotten by age: a BRIN index on their creation time.

Keys arrive in time order, so a block-range index is a few pages and costs the
insert on the hot path next to nothing, while `balance prune-keys` finds old
keys without reading the whole table.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX idempotency_keys_by_age ON idempotency_keys USING brin (created_at)")


def downgrade() -> None:
    op.execute("DROP INDEX idempotency_keys_by_age")
