"""The relay on the real broker and the real database: every event published in
event_id order with its AMQP and CloudEvents properties, valid against
docs/asyncapi.yaml, marked sent only once confirmed; two relays, one publishing."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest

from adapters.amqp.publisher import AmqpPublisher
from adapters.postgres.engine import create_engine, migrate
from adapters.postgres.events import PostgresOutbox
from adapters.postgres.movements import PostgresMovementBatch
from adapters.postgres.session import Engine
from application.deposit import Deposit, deposit
from application.relay import Relay, RelaySettings, RelayTooOld
from application.reserve import Reserve, reserve
from application.runner import MoneyMovements
from application.transfer import Transfer, transfer
from tests import postgres
from tests.broker import BROKER_URL, consumer, unique_exchange, validate
from tests.conftest import Adapter
from tests.helpers import keep, rub, run

pytestmark = [pytest.mark.postgres, pytest.mark.broker]


def relay(engine: Engine, exchange: str, holder: str) -> Relay:
    return Relay(
        lambda: PostgresOutbox(engine),
        AmqpPublisher(BROKER_URL, exchange),
        settings=RelaySettings(lease_ms=1000, idle_seconds=0.02),
        holder=holder,
    )


async def test_every_event_is_published_once_in_order_and_marked_sent(
    pg_adapter: Adapter, pg_engine: Engine, pg_url: str
) -> None:
    exchange = unique_exchange()
    await run(pg_adapter, deposit, Deposit(1, rub("100"), metadata=(("k", "v"),)), key="k-1")
    await run(pg_adapter, transfer, Transfer(1, 2, rub("30")))
    await run(pg_adapter, reserve, Reserve(2, 5, 77, rub("10")))
    stop = asyncio.Event()
    async with consumer(exchange) as received:
        first, second = relay(pg_engine, exchange, "a"), relay(pg_engine, exchange, "b")
        tasks = [asyncio.create_task(r.run(stop)) for r in (first, second)]
        try:
            await received.until(4, seconds=30)
            for n in range(20):  # more while the relays run
                await run(pg_adapter, deposit, Deposit(3 + n % 4, rub("1")))
            await received.until(24, seconds=30)
            await asyncio.sleep(0.5)  # a second relay publishing would show as repeats
        finally:
            stop.set()
            await asyncio.gather(*tasks)
    assert received.ids() == list(range(1, 25)), "once each, in event_id order"
    body, message_id, headers, key = received.messages[0]
    assert (message_id, key) == ("1", "user.1.deposit")
    assert (body["idempotency_key"], body["metadata"]) == ("k-1", {"k": "v"})
    assert headers["cloudEvents:id"] == "1"
    assert headers["cloudEvents:type"] == "balance.deposit"
    assert [m[3] for m in received.messages[1:4]] == [
        "user.1.transfer_out",
        "user.2.transfer_in",
        "user.2.reserve",
    ]
    for body, _, headers, _ in received.messages:
        validate(body, headers)
    db = await asyncpg.connect(pg_url)
    try:
        row = await db.fetchrow("SELECT sent_upto, holder FROM event_relay")
    finally:
        await db.close()
    assert row is not None
    assert (row["sent_upto"], row["holder"]) == (24, None), "all confirmed; lease given back"


async def test_with_the_broker_unreachable_writes_go_on_and_nothing_is_marked_sent(
    pg_adapter: Adapter, pg_engine: Engine, pg_url: str
) -> None:
    await postgres.truncate(pg_url)
    stop = asyncio.Event()
    down = Relay(
        lambda: PostgresOutbox(pg_engine),
        AmqpPublisher("amqp://guest:guest@127.0.0.1:1/%2F", unique_exchange(), timeout=1),
        settings=RelaySettings(lease_ms=1000, max_backoff_seconds=0.2),
        holder="down",
    )
    task = asyncio.create_task(down.run(stop))
    try:
        for n in range(5):
            await run(pg_adapter, deposit, Deposit(1 + n, rub("1")))
        await asyncio.sleep(1)
        async with PostgresOutbox(pg_engine) as outbox:
            state = await outbox.state()
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await task
    assert (state.last_id, state.sent_upto, state.unsent) == (5, 0, 5)
    assert state.relay == "down"
    assert state.broker is not None
    assert state.broker.startswith("unreachable"), state.broker
    assert state.oldest_unsent_seconds > 0.5


async def test_a_relay_whose_code_the_schema_moved_past_gives_its_lease_back_and_stops(
    database: str,
) -> None:
    """A later version migrated and raised the schema's floor past this code while
    its relay ran (migrations/README.md, rule 5): the relay sees it within
    `schema_check_seconds`, publishes no more, gives its lease back and stops."""
    await migrate(database)
    engine = create_engine(database, pool_size=2)
    movements = MoneyMovements(lambda: PostgresMovementBatch(engine))
    exchange = unique_exchange()
    mover = Relay(
        lambda: PostgresOutbox(engine),
        AmqpPublisher(BROKER_URL, exchange),
        settings=RelaySettings(lease_ms=1000, idle_seconds=0.02, schema_check_seconds=0.2),
        holder="old",
    )
    admin = await asyncpg.connect(database)
    try:
        async with consumer(exchange) as received:
            running = asyncio.create_task(mover.run(asyncio.Event()))
            await movements.execute(deposit, Deposit(1, rub("5")), keep)
            await received.until(1, seconds=30)
            assert await admin.fetchval("SELECT holder FROM event_relay") == "old"
            await admin.execute("UPDATE alembic_version SET version_num = '0099_later'")
            await admin.execute("UPDATE schema_floor SET oldest_code = '0098_later'")
            with pytest.raises(RelayTooOld, match="needs code of revision 0098_later or later"):
                await asyncio.wait_for(running, 10)
            await movements.execute(deposit, Deposit(1, rub("1")), keep)
            await asyncio.sleep(0.5)
        assert received.ids() == [1]  # the second event waits for a newer relay
        assert await admin.fetchval("SELECT holder FROM event_relay") is None
    finally:
        await admin.close()
        await engine.dispose()
