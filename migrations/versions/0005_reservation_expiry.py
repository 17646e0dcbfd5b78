"""Reservations that expire: `expires_at`, the `expired` end state, `expire` entries,
and an index the sweeper reads the due reservations through.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

KINDS = "'deposit', 'withdrawal', 'transfer', 'reserve', 'cancel', 'recognize'"
ENTRY_KINDS = (
    "'deposit', 'withdrawal', 'transfer_in', 'transfer_out', 'reserve', 'cancel',"
    " 'recognize', 'release'"
)
STATUSES = "'reserved', 'cancelled', 'recognized'"


def _checks(kinds: str, entry_kinds: str, statuses: str) -> None:
    """NOT VALID: no scan of the ledger under the exclusive lock; 0006 validates them
    (migrations/README.md)."""
    op.execute(
        "ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check,"
        f" ADD CONSTRAINT transactions_kind_check CHECK (kind IN ({kinds})) NOT VALID"
    )
    op.execute(
        "ALTER TABLE entries DROP CONSTRAINT entries_kind_check,"
        f" ADD CONSTRAINT entries_kind_check CHECK (kind IN ({entry_kinds})) NOT VALID"
    )
    op.execute(
        "ALTER TABLE reservations DROP CONSTRAINT reservations_status_check,"
        f" ADD CONSTRAINT reservations_status_check CHECK (status IN ({statuses})) NOT VALID"
    )


def upgrade() -> None:
    op.execute("ALTER TABLE reservations ADD COLUMN expires_at TIMESTAMPTZ")
    _checks(f"{KINDS}, 'expire'", f"{ENTRY_KINDS}, 'expire'", f"{STATUSES}, 'expired'")
    op.execute(
        "CREATE INDEX reservations_due ON reservations (expires_at)"
        " WHERE status = 'reserved' AND expires_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX reservations_due")
    _checks(KINDS, ENTRY_KINDS, STATUSES)
    op.execute("ALTER TABLE reservations DROP COLUMN expires_at")
