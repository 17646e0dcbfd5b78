"""The relay's publisher: RabbitMQ (AMQP 0-9-1) through aio-pika, publisher confirms on.

Every event goes to the durable topic exchange `balance.events` with routing key
`user.<user_id>.<type>`, `message_id` the event_id, persistent, JSON, and the
CloudEvents attributes in the application properties (AMQP binding, binary mode). A
batch is published as a whole, its confirms awaited together: the channel keeps them
in publishing order, and the relay marks the batch sent only when all came back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aiormq import spec
from aiormq.abc import ChannelFrame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from adapters.event_message import encode_event
from application.events import StoredEvent
from application.relay import Publisher, PublishFailed

EXCHANGE = "balance.events"
SOURCE = "/balance"
PERSISTENT = 2


def routing_key(stored: StoredEvent) -> str:
    return f"user.{stored.event.user_id}.{stored.event.type}"


def properties_of(stored: StoredEvent) -> spec.Basic.Properties:
    event_id = str(stored.event_id)
    kind = f"balance.{stored.event.type}"
    return spec.Basic.Properties(
        content_type="application/json",
        delivery_mode=PERSISTENT,
        message_id=event_id,
        timestamp=stored.occurred_at,
        message_type=kind,
        headers={
            "cloudEvents:specversion": "1.0",
            "cloudEvents:id": event_id,
            "cloudEvents:source": SOURCE,
            "cloudEvents:type": kind,
            "cloudEvents:time": stored.occurred_at.isoformat().replace("+00:00", "Z"),
            "cloudEvents:subject": f"user/{stored.event.user_id}",
        },
    )


class AmqpPublisher(Publisher):
    def __init__(self, url: str, exchange: str = EXCHANGE, timeout: float = 10.0) -> None:
        self._url = url
        self._exchange_name = exchange
        self._timeout = timeout
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def connect(self) -> None:
        self._connection = await aio_pika.connect(self._url, timeout=self._timeout)
        self._channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await self._channel.declare_exchange(
            self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        """The whole batch as one write on aio-pika's underlying channel (aiormq): its
        frames marshalled together and written at once, a confirmation registered for
        each delivery tag, all awaited together. One `basic_publish` a message cost
        half of the relay's CPU (a lock, a timeout, a queued write and a socket write
        each); the channel's lock is held for the batch, so no other frame on this
        channel comes between a message's method, header and body."""
        if self._channel is None or self._channel.is_closed:
            raise PublishFailed("not connected")
        channel = await self._channel.get_underlay_channel()
        try:
            async with asyncio.timeout(self._timeout):
                for confirm in await _write_batch(channel, self._exchange_name, events):
                    await confirm  # a nack raises (aiormq's DeliveryError)
        except Exception as error:
            raise PublishFailed(f"{type(error).__name__}: {error}") from error

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        self._channel = self._exchange = None
        if connection is not None:
            await connection.close()


def _frames(
    events: Sequence[StoredEvent], exchange: str, most: int
) -> list[spec.Basic.Publish | ContentHeader | ContentBody]:
    """Each event's method, header and body frames (the body split at `most` bytes)."""
    frames: list[spec.Basic.Publish | ContentHeader | ContentBody] = []
    for stored in events:
        body = encode_event(stored)
        frames.append(spec.Basic.Publish(exchange=exchange, routing_key=routing_key(stored)))
        frames.append(ContentHeader(properties=properties_of(stored), body_size=len(body)))
        frames.extend(ContentBody(body[i : i + most]) for i in range(0, len(body), most))
    return frames


async def _write_batch(
    channel: aiormq.abc.AbstractChannel, exchange: str, events: Sequence[StoredEvent]
) -> list[asyncio.Future[Any]]:
    """Every event's frames in one write, under the channel's lock, with each delivery
    tag's confirmation registered where the channel resolves acks and nacks."""
    if not isinstance(channel, aiormq.Channel):
        raise PublishFailed(f"unexpected channel {type(channel).__name__}")
    frames = _frames(events, exchange, channel.max_content_size)
    async with channel.lock:
        first = channel.delivery_tag + 1
        channel.delivery_tag += len(events)
        confirms = [channel.create_future() for _ in events]
        channel.confirmations.update(zip(range(first, first + len(events)), confirms, strict=True))
        written = channel.create_future()
        await channel.write_queue.put(
            ChannelFrame.marshall(
                channel_number=channel.number, frames=frames, drain_future=written
            )
        )
        await written
    return confirms
