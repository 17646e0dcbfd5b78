"""Events of every movement: the outbox (`events`), the counter that numbers them in
commit order, each account's event count, and the relay's lease and progress.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: stored in the catalog, no table rewrite.
    op.execute("ALTER TABLE accounts ADD COLUMN event_seq BIGINT NOT NULL DEFAULT 0")
    op.execute(
        """
        CREATE TABLE events (
            event_id         BIGINT PRIMARY KEY,
            user_id          BIGINT NOT NULL,
            user_seq         BIGINT NOT NULL CHECK (user_seq > 0),
            type             TEXT NOT NULL,
            transaction_id   BIGINT,
            amount           BIGINT NOT NULL,
            available_delta  BIGINT NOT NULL,
            reserved_delta   BIGINT NOT NULL,
            available        BIGINT NOT NULL,
            reserved         BIGINT NOT NULL,
            credit_limit     BIGINT,
            frozen           BOOLEAN,
            idempotency_key  TEXT,
            created_at       TIMESTAMPTZ NOT NULL
        )
        """
    )
    # The pull API's filter on a user, in event_id order. user_seq needs no index of
    # its own: the batch that writes it holds the user's row lock.
    op.execute("CREATE INDEX events_user ON events (user_id, event_id)")
    # One row: the last event_id given. A batch takes its ids by updating it in its
    # write, so the row lock orders the batches' commits and their ids alike.
    op.execute(
        "CREATE TABLE event_counter (id INT PRIMARY KEY CHECK (id = 1), last_id BIGINT NOT NULL)"
    )
    op.execute("INSERT INTO event_counter VALUES (1, 0)")
    op.execute(
        """
        CREATE TABLE event_relay (
            id            INT PRIMARY KEY CHECK (id = 1),
            sent_upto     BIGINT NOT NULL,
            holder        TEXT,
            lease_until   TIMESTAMPTZ,
            broker        TEXT,
            heartbeat_at  TIMESTAMPTZ
        )
        """
    )
    op.execute("INSERT INTO event_relay (id, sent_upto) VALUES (1, 0)")


def downgrade() -> None:
    op.execute("DROP TABLE event_relay")
    op.execute("DROP TABLE event_counter")
    op.execute("DROP TABLE events")
    op.execute("ALTER TABLE accounts DROP COLUMN event_seq")
