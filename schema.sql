-- The balance service's final schema (the same DDL the Alembic migrations build;
-- tests/integration/test_schema.py proves it). Amounts are BIGINT kopecks.

-- A user's balances and spending rules. `available` may go below zero down to the
-- credit limit; reserved money is never available. A limit lowered below the debt
-- of the day is allowed (it refuses further debits): that debt is `tolerated_debt`,
-- so the check still refuses any balance below both.
CREATE TABLE accounts (
    user_id            BIGINT PRIMARY KEY CHECK (user_id > 0),
    available          BIGINT NOT NULL DEFAULT 0,
    reserved           BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    credit_limit       BIGINT NOT NULL DEFAULT 0,
    frozen             BOOLEAN NOT NULL DEFAULT false,
    limits_changed_at  TIMESTAMPTZ,
    tolerated_debt     BIGINT NOT NULL DEFAULT 0,
    event_seq          BIGINT NOT NULL DEFAULT 0,  -- the user's last event's user_seq
    CONSTRAINT accounts_available_within_limit
        CHECK (available >= -greatest(credit_limit, tolerated_debt)),
    CONSTRAINT accounts_credit_limit_check
        CHECK (credit_limit >= 0 AND credit_limit <= 1000000000000000)
);

CREATE TABLE transactions (
    id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                  TEXT NOT NULL CONSTRAINT transactions_kind_check CHECK (kind IN
                              ('deposit', 'withdrawal', 'transfer', 'reserve', 'cancel', 'recognize',
                               'expire', 'movement')),
    user_id               BIGINT,
    counterparty_user_id  BIGINT,
    service_id            BIGINT,
    order_id              BIGINT,
    description           TEXT,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    metadata              JSONB,  -- the client's string pairs; NULL: none
    caller                TEXT    -- the named token's caller (0012); NULL: none named
);

-- One row per posting. Entries of a transaction sum to zero; user entries carry
-- the account's balance after them, system accounts (revenue, external) do not.
-- No foreign key to transactions (0011): an entry and its transaction are written by
-- one statement, and both tables are append-only.
CREATE TABLE entries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  BIGINT NOT NULL,
    account         TEXT NOT NULL CHECK (account IN ('available', 'reserved', 'revenue', 'external')),
    kind            TEXT NOT NULL CONSTRAINT entries_kind_check CHECK (kind IN ('deposit',
                        'withdrawal', 'transfer_in', 'transfer_out', 'reserve', 'cancel',
                        'recognize', 'release', 'expire', 'movement_out', 'movement_in')),
    user_id         BIGINT,
    service_id      BIGINT,
    amount          BIGINT NOT NULL CHECK (amount <> 0),
    balance_after   BIGINT,
    created_at      TIMESTAMPTZ NOT NULL,
    CONSTRAINT entries_user_accounts_have_balance CHECK (
        (account IN ('available', 'reserved')) = (user_id IS NOT NULL AND balance_after IS NOT NULL)
    ),
    CONSTRAINT entries_revenue_has_service CHECK ((account = 'revenue') = (service_id IS NOT NULL)),
    CONSTRAINT entries_reserved_never_negative CHECK (account <> 'reserved' OR balance_after >= 0)
);

CREATE INDEX entries_transaction ON entries (transaction_id);
CREATE INDEX entries_user_by_date ON entries (user_id, created_at, id) WHERE user_id IS NOT NULL;
CREATE INDEX entries_user_by_amount ON entries (user_id, abs(amount), id) WHERE user_id IS NOT NULL;
CREATE INDEX entries_revenue_by_date ON entries (created_at) INCLUDE (service_id, amount)
    WHERE account = 'revenue';

-- A statement's filter on metadata (`?metadata.order=77`): one row per user a tagged
-- transaction touches and per pair, `tag` being 'key=value', read in the statement's
-- order.
CREATE TABLE transaction_tags (
    user_id         BIGINT NOT NULL,
    tag             TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    transaction_id  BIGINT NOT NULL,
    PRIMARY KEY (user_id, tag, created_at, transaction_id)
);

CREATE TABLE reservations (
    order_id           BIGINT PRIMARY KEY CHECK (order_id > 0),
    user_id            BIGINT NOT NULL REFERENCES accounts (user_id),
    service_id         BIGINT NOT NULL CHECK (service_id > 0),
    amount             BIGINT NOT NULL CHECK (amount > 0),
    status             TEXT NOT NULL DEFAULT 'reserved'
                           CHECK (status IN ('reserved', 'cancelled', 'recognized', 'expired')),
    recognized_amount  BIGINT CHECK (recognized_amount > 0 AND recognized_amount <= amount),
    created_at         TIMESTAMPTZ NOT NULL,
    closed_at          TIMESTAMPTZ,
    expires_at         TIMESTAMPTZ,
    metadata           JSONB,  -- the reserving request's pairs; NULL: none
    CONSTRAINT reservations_recognized_has_amount
        CHECK ((status = 'recognized') = (recognized_amount IS NOT NULL)),
    CONSTRAINT reservations_closed_has_time CHECK ((status = 'reserved') = (closed_at IS NULL))
);

CREATE INDEX reservations_open_by_user ON reservations (user_id) WHERE status = 'reserved';
-- The sweeper reads the due reservations, oldest first (expiry).
CREATE INDEX reservations_due ON reservations (expires_at)
    WHERE status = 'reserved' AND expires_at IS NOT NULL;

CREATE TABLE idempotency_keys (
    key          TEXT PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint  TEXT NOT NULL,
    status       SMALLINT,
    body         BYTEA,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- Keys arrive in time order: a block-range index finds the old ones for `balance prune-keys`.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys USING brin (created_at);

-- Names for the service ids other services send; a service needs no name to earn.
CREATE TABLE services (
    service_id  BIGINT PRIMARY KEY CHECK (service_id > 0),
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION refuse_ledger_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_change();
CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_change();

-- The outbox: one event per user a ledger transaction touches and per limit change,
-- written by the batch that writes the movement. `event_id` is taken from
-- event_counter in that same write, under the counter row's lock, held to commit: a
-- later id is a later commit. The rest of a movement's event (description,
-- metadata, order, service, counterparty) is read from its transaction.
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
    created_at       TIMESTAMPTZ NOT NULL,
    caller           TEXT
);
-- The pull API's filter on a user, in event_id order (user_seq is unique by the user's
-- row lock the writing batch holds).
CREATE INDEX events_user ON events (user_id, event_id);

CREATE TABLE event_counter (id INT PRIMARY KEY CHECK (id = 1), last_id BIGINT NOT NULL);
INSERT INTO event_counter VALUES (1, 0);

-- The relay's progress (every event up to `sent_upto` was confirmed by the broker)
-- and its lease: one relay publishes at a time.
CREATE TABLE event_relay (
    id            INT PRIMARY KEY CHECK (id = 1),
    sent_upto     BIGINT NOT NULL,
    holder        TEXT,
    lease_until   TIMESTAMPTZ,
    broker        TEXT,
    heartbeat_at  TIMESTAMPTZ
);
INSERT INTO event_relay (id, sent_upto) VALUES (1, 0);

-- The oldest code revision that keeps every rule on this schema (migrations/README.md,
-- rule 5): a server whose code does not know it is too old, not ready, and does not
-- start. Raised by a migration that drops what older code uses.
CREATE TABLE schema_floor (id INT PRIMARY KEY CHECK (id = 1), oldest_code TEXT NOT NULL);
INSERT INTO schema_floor VALUES (1, '0012');
GRANT SELECT ON schema_floor TO PUBLIC;
