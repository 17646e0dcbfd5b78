"""Forgetting idempotency keys past their retention window (`balance prune-keys`), and
events the broker confirmed (`balance prune-events`).

A key is what makes a retried money movement safe, so none is forgotten by the
service itself: an operator runs this (daily, say) with the schema owner's URL,
and a key older than the window counts as new again. Deleted in batches, each its
own short transaction, so the hot path's inserts never wait long.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from adapters.postgres.engine import admin_engine, create_engine
from adapters.postgres.events import PostgresOutbox

# now(), not clock_timestamp(): a volatile cutoff could not use the index. The
# rows are deleted by their ctid, a TID scan, not by a join back on the key.
FORGET_BATCH = """
    DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM idempotency_keys
        WHERE created_at < now() - CAST(:age AS interval)
        LIMIT :batch
    ))
"""


async def prune_idempotency_keys(url: str, older_than: timedelta, batch: int = 10_000) -> int:
    """Delete the keys created more than `older_than` ago; how many were deleted."""
    if older_than < timedelta(days=1):
        raise ValueError("keys are kept at least one day")
    engine = admin_engine(url)
    deleted = 0
    try:
        while True:
            async with engine.begin() as connection:
                result = await connection.execute(
                    text(FORGET_BATCH), {"age": older_than, "batch": batch}
                )
            deleted += result.rowcount
            if result.rowcount < batch:
                return deleted
    finally:
        await engine.dispose()


async def prune_events(url: str, older_than: timedelta, batch: int = 10_000) -> int:
    """Delete the events the broker confirmed that are older than `older_than` (the
    oldest first, in batches); how many were deleted. Unsent events are never pruned."""
    if older_than < timedelta(days=1):
        raise ValueError("events are kept at least one day")
    engine = create_engine(url, pool_size=1)
    deleted = 0
    try:
        while True:
            async with PostgresOutbox(engine) as outbox:
                gone = await outbox.prune(older_than.days, batch)
            deleted += gone
            if gone < batch:
                return deleted
    finally:
        await engine.dispose()
