"""Credit limits and freeze on accounts, multi-leg movements, and metadata on ledger
transactions with an index of their tags for statements. Constraints on the ledger
tables go in NOT VALID; 0008 validates them (migrations/README.md).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KINDS = "'deposit', 'withdrawal', 'transfer', 'reserve', 'cancel', 'recognize', 'expire'"
ENTRY_KINDS = (
    "'deposit', 'withdrawal', 'transfer_in', 'transfer_out', 'reserve', 'cancel',"
    " 'recognize', 'release', 'expire'"
)


def upgrade() -> None:
    # Constant defaults: PostgreSQL stores them in the catalog, no table rewrite.
    op.execute(
        "ALTER TABLE accounts ADD COLUMN credit_limit BIGINT NOT NULL DEFAULT 0,"
        " ADD COLUMN frozen BOOLEAN NOT NULL DEFAULT false,"
        " ADD COLUMN limits_changed_at TIMESTAMPTZ,"
        " ADD COLUMN tolerated_debt BIGINT NOT NULL DEFAULT 0"
    )
    op.execute(
        "ALTER TABLE accounts DROP CONSTRAINT accounts_available_check,"
        " ADD CONSTRAINT accounts_available_within_limit"
        " CHECK (available >= -greatest(credit_limit, tolerated_debt)) NOT VALID,"
        " ADD CONSTRAINT accounts_credit_limit_check"
        " CHECK (credit_limit >= 0 AND credit_limit <= 1000000000000000) NOT VALID"
    )
    op.execute("ALTER TABLE transactions ADD COLUMN metadata JSONB")
    op.execute(
        "ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check,"
        f" ADD CONSTRAINT transactions_kind_check CHECK (kind IN ({KINDS}, 'movement')) NOT VALID"
    )
    op.execute(
        "ALTER TABLE entries DROP CONSTRAINT entries_kind_check,"
        " ADD CONSTRAINT entries_kind_check"
        f" CHECK (kind IN ({ENTRY_KINDS}, 'movement_out', 'movement_in')) NOT VALID"
    )
    # An available balance may be below zero now, down to the credit limit of the day.
    op.execute(
        "ALTER TABLE entries DROP CONSTRAINT entries_balance_after_check,"
        " ADD CONSTRAINT entries_reserved_never_negative"
        " CHECK (account <> 'reserved' OR balance_after >= 0) NOT VALID"
    )
    op.execute(
        """
        CREATE TABLE transaction_tags (
            user_id         BIGINT NOT NULL,
            tag             TEXT NOT NULL,
            created_at      TIMESTAMPTZ NOT NULL,
            transaction_id  BIGINT NOT NULL,
            PRIMARY KEY (user_id, tag, created_at, transaction_id)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE transaction_tags")
    op.execute(
        "ALTER TABLE entries DROP CONSTRAINT entries_reserved_never_negative,"
        " ADD CONSTRAINT entries_balance_after_check CHECK (balance_after >= 0) NOT VALID"
    )
    op.execute(
        "ALTER TABLE entries DROP CONSTRAINT entries_kind_check,"
        f" ADD CONSTRAINT entries_kind_check CHECK (kind IN ({ENTRY_KINDS})) NOT VALID"
    )
    op.execute(
        "ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check,"
        f" ADD CONSTRAINT transactions_kind_check CHECK (kind IN ({KINDS})) NOT VALID"
    )
    op.execute("ALTER TABLE transactions DROP COLUMN metadata")
    op.execute(
        "ALTER TABLE accounts DROP CONSTRAINT accounts_available_within_limit,"
        " DROP CONSTRAINT accounts_credit_limit_check,"
        " ADD CONSTRAINT accounts_available_check CHECK (available >= 0) NOT VALID"
    )
    op.execute(
        "ALTER TABLE accounts DROP COLUMN credit_limit, DROP COLUMN frozen,"
        " DROP COLUMN limits_changed_at, DROP COLUMN tolerated_debt"
    )
