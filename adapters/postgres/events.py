"""The outbox on PostgreSQL: events read in `event_id` order, and the relay's lease and
progress (`event_relay`, one row).

Batches write events in their one write statement (movements.py), numbered from
`event_counter` under its row lock, held to commit: ids are given in commit order and
committed in that order, with no gaps (a rolled-back batch gives its range back). So
the unsent count is the counter minus the relay's progress, and a reader that has
seen N never later sees less.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from adapters.postgres.revisions import FLOOR_SQL, REVISION_SQL, known_revisions, too_old
from adapters.postgres.session import Session, replicated
from adapters.postgres.sql import Db, Sql
from adapters.postgres.write_set import pairs_of
from application.events import Event, StoredEvent
from application.ports import Events
from application.relay import Lease, Outbox, OutboxState

_COLUMNS = (
    "v.event_id, v.type, v.user_id, v.user_seq, v.transaction_id, v.amount,"
    " v.available_delta, v.reserved_delta, v.available, v.reserved, v.idempotency_key,"
    " v.credit_limit, v.frozen, v.created_at,"
    " CASE WHEN t.user_id = v.user_id THEN t.counterparty_user_id"
    "      WHEN t.counterparty_user_id = v.user_id THEN t.user_id END,"
    " t.order_id, t.service_id, t.description, t.metadata, v.caller"
)


def _after(where: str, names: tuple[str, ...]) -> Sql:
    """Events in order, each once on the synchronous standby too: a COMMIT whose wait
    for the standby was cancelled is visible on the primary alone, and an event of it
    shown (published, pulled) could be lost in a failover, its id given again to
    another event, which consumers would drop as a repeat. When it finds events, the
    statement writes a WAL message (transactional): run on its own, as reads are, its
    commit waits for the standby to have everything committed before it, those events
    included (tests/integration/test_unreplicated_commit.py)."""
    return Sql(
        f"WITH found AS MATERIALIZED (SELECT {_COLUMNS} FROM events AS v"
        f" LEFT JOIN transactions AS t ON t.id = v.transaction_id WHERE {where}"
        " ORDER BY v.event_id LIMIT $2),"
        " durable AS MATERIALIZED (SELECT pg_logical_emit_message(true, 'balance.events', '')"
        " WHERE EXISTS (SELECT FROM found))"
        " SELECT found.* FROM found, durable ORDER BY found.event_id",
        names,
        {},
    )


_AFTER = _after("v.event_id > $1", ("after", "limit"))
_AFTER_OF_USER = _after("v.user_id = $3 AND v.event_id > $1", ("after", "limit", "user_id"))


def stored_event(row: Sequence[Any]) -> StoredEvent:
    event = Event(
        row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10],
        row[11], row[12], row[19],
    )  # fmt: skip
    details = (row[14], row[15], row[16], row[17], pairs_of(row[18]))
    return StoredEvent(row[0], event, row[13], *details)


class PostgresEvents(Events):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def after(
        self, event_id: int, limit: int, user_id: int | None = None
    ) -> list[StoredEvent]:
        connection = self._db.connection
        connection.unreplicated = None
        if user_id is None:
            rows = await self._db.rows(_AFTER, after=event_id, limit=limit)
        else:
            rows = await self._db.rows(_AFTER_OF_USER, after=event_id, limit=limit, user_id=user_id)
        replicated(connection)
        return [stored_event(row) for row in rows]


# The lease: taken when free or expired (or already ours), renewed by its holder; the
# holder also says how it finds the broker.
_TAKE = Sql(
    "UPDATE event_relay SET holder = $1, lease_until = clock_timestamp() + $2 * interval '1 ms',"
    " broker = $3, heartbeat_at = clock_timestamp()"
    " WHERE id = 1 AND (holder IS NULL OR holder = $1 OR lease_until < clock_timestamp())"
    " RETURNING sent_upto",
    ("holder", "ms", "broker"),
    {},
)
# Progress moves only while the lease is still ours: a relay that lost it (paused past
# its lease) cannot move back what the new holder did.
_SENT = Sql(
    "UPDATE event_relay SET sent_upto = greatest(sent_upto, $2),"
    " lease_until = clock_timestamp() + $3 * interval '1 ms', heartbeat_at = clock_timestamp()"
    " WHERE id = 1 AND holder = $1 AND lease_until >= clock_timestamp() RETURNING sent_upto",
    ("holder", "upto", "ms"),
    {},
)
_RELEASE = Sql(
    "UPDATE event_relay SET holder = NULL, lease_until = NULL, broker = NULL"
    " WHERE id = 1 AND holder = $1",
    ("holder",),
    {},
)
# Whether this code may relay from the schema (migrations/README.md, rule 5).
_REVISION = Sql(REVISION_SQL, (), {})
_FLOOR = Sql(FLOOR_SQL, (), {})
_STATE = Sql(
    "SELECT c.last_id, r.sent_upto, r.holder, r.broker,"
    " r.lease_until >= clock_timestamp() AS leased,"
    " extract(epoch FROM clock_timestamp() - (SELECT created_at FROM events"
    "   WHERE event_id = r.sent_upto + 1)) AS oldest"
    " FROM event_counter AS c, event_relay AS r",
    (),
    {},
)
_PRUNE = Sql(
    "WITH gone AS (DELETE FROM events WHERE event_id IN (SELECT event_id FROM events"
    " WHERE event_id <= (SELECT sent_upto FROM event_relay)"
    " AND created_at < clock_timestamp() - $1 * interval '1 day'"
    " ORDER BY event_id LIMIT $2) RETURNING 1) SELECT count(*) FROM gone",
    ("days", "limit"),
    {},
)


class PostgresOutbox(Session, Outbox):
    """The relay's side of the outbox: a pooled connection, each call one statement."""

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.events = PostgresEvents(self.db)
        return self

    async def take(self, holder: str, lease_ms: int, broker: str) -> Lease | None:
        sent = await self.db.value(_TAKE, holder=holder, ms=lease_ms, broker=broker)
        return Lease(holder, sent) if sent is not None else None

    async def sent(self, holder: str, upto: int, lease_ms: int) -> bool:
        """Record every event up to `upto` confirmed; False if the lease was lost."""
        return await self.db.value(_SENT, holder=holder, upto=upto, ms=lease_ms) is not None

    async def release(self, holder: str) -> None:
        await self.db.run(_RELEASE, holder=holder)

    async def refusal(self) -> str | None:
        version = await self.db.value(_REVISION)
        if version is None or version in known_revisions():
            return None
        return too_old(version, await self.db.value(_FLOOR))

    async def state(self) -> OutboxState:
        row = await self.db.row(_STATE)
        assert row is not None
        last, sent, holder, broker, leased, oldest = row
        return OutboxState(
            last_id=last,
            sent_upto=sent,
            relay=holder if leased else None,
            broker=broker if leased else None,
            oldest_unsent_seconds=float(oldest) if oldest is not None else 0.0,
        )

    async def prune(self, days: int, limit: int = 10_000) -> int:
        """Forget up to `limit` sent events older than `days`; how many went."""
        return int(await self.db.value(_PRUNE, days=days, limit=limit))
