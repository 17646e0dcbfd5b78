"""The publisher on the real broker: a batch goes out as one write, every message
whole and in order, and a batch is confirmed only when the broker acks every message
of it (a nack fails the batch, so the relay marks nothing sent)."""

from __future__ import annotations

from datetime import UTC, datetime

import aio_pika
import pytest

from adapters.amqp.publisher import AmqpPublisher
from application.events import Event, StoredEvent
from application.relay import PublishFailed
from tests.broker import BROKER_URL, consumer, unique_exchange

pytestmark = [pytest.mark.broker]


def stored(event_id: int, description: str | None = None) -> StoredEvent:
    event = Event(
        type="deposit", user_id=1 + event_id % 7, user_seq=event_id, transaction_id=event_id,
        amount=100, available_delta=100, reserved_delta=0, available=100 * event_id,
        reserved=0, idempotency_key=f"k-{event_id}",
    )  # fmt: skip
    return StoredEvent(event_id, event, datetime.now(UTC), description=description)


async def test_a_batch_arrives_whole_and_in_order_with_a_body_larger_than_a_frame() -> None:
    exchange = unique_exchange()
    big = "x" * 300_000  # more than the negotiated frame size: split into body frames
    events = [stored(n, big if n == 700 else None) for n in range(1, 1501)]
    publisher = AmqpPublisher(BROKER_URL, exchange)
    async with consumer(exchange) as received:
        await publisher.connect()
        try:
            await publisher.publish(events[:1000])
            await publisher.publish(events[1000:])
        finally:
            await publisher.close()
        await received.until(1500, seconds=30)
    assert received.ids() == list(range(1, 1501))
    assert received.messages[699][0]["description"] == big
    assert [key for *_, key in received.messages[:2]] == ["user.2.deposit", "user.3.deposit"]


async def test_a_batch_the_broker_refuses_in_part_fails_as_a_whole() -> None:
    exchange = unique_exchange()
    connection = await aio_pika.connect(BROKER_URL)
    channel = await connection.channel()
    topic = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(
        f"{exchange}.full", durable=True,
        arguments={"x-max-length": 3, "x-overflow": "reject-publish"},
    )  # fmt: skip
    await queue.bind(topic, "#")
    publisher = AmqpPublisher(BROKER_URL, exchange)
    try:
        await publisher.connect()
        await publisher.publish([stored(n) for n in range(1, 4)])  # fits: acked
        with pytest.raises(PublishFailed, match="Nack"):
            await publisher.publish([stored(n) for n in range(4, 9)])  # nacked
    finally:
        await publisher.close()
        await queue.delete(if_unused=False, if_empty=False)
        await topic.delete()
        await connection.close()
