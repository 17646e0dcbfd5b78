"""SQLAlchemy Core tables mirroring schema.sql (which the migrations build)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

metadata = MetaData()
TimestampTZ = TIMESTAMP(timezone=True)

accounts = Table(
    "accounts",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("available", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
    Column("created_at", TimestampTZ, nullable=False),
    Column("updated_at", TimestampTZ, nullable=False),
    Column("credit_limit", BigInteger, nullable=False),
    Column("frozen", Boolean, nullable=False),
    Column("limits_changed_at", TimestampTZ),
    Column("tolerated_debt", BigInteger, nullable=False),
    Column("event_seq", BigInteger, nullable=False),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("user_id", BigInteger),
    Column("counterparty_user_id", BigInteger),
    Column("service_id", BigInteger),
    Column("order_id", BigInteger),
    Column("description", Text),
    Column("created_at", TimestampTZ, nullable=False),
    Column("metadata", JSONB),
    Column("caller", Text),
)

transaction_tags = Table(
    "transaction_tags",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("tag", Text, primary_key=True),
    Column("created_at", TimestampTZ, primary_key=True),
    Column("transaction_id", BigInteger, primary_key=True),
)

entries = Table(
    "entries",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("transaction_id", BigInteger, nullable=False),
    Column("account", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("user_id", BigInteger),
    Column("service_id", BigInteger),
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger),
    Column("created_at", TimestampTZ, nullable=False),
)

reservations = Table(
    "reservations",
    metadata,
    Column("order_id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("service_id", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("recognized_amount", BigInteger),
    Column("created_at", TimestampTZ, nullable=False),
    Column("closed_at", TimestampTZ),
    Column("expires_at", TimestampTZ),
    Column("metadata", JSONB),
)

services = Table(
    "services",
    metadata,
    Column("service_id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False),
    Column("updated_at", TimestampTZ, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", Text, primary_key=True),
    Column("fingerprint", Text, nullable=False),
    Column("status", SmallInteger),
    Column("body", LargeBinary),
    Column("created_at", TimestampTZ, nullable=False),
)
