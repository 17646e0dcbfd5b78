"""The machine's RabbitMQ for tests: an exchange of each test's own (so parallel runs do
not mix), and a consumer that keeps every message it gets, across broker restarts."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import jsonschema_rs
import yaml
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

BROKER_URL = os.environ.get("TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
ASYNCAPI = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.yaml"


def unique_exchange() -> str:
    return f"balance.events.test-{uuid.uuid4().hex[:12]}"


@dataclass
class Received:
    """Every delivery in arrival order: (event as JSON, message id, headers, routing key)."""

    messages: list[tuple[dict[str, Any], str, dict[str, Any], str]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def ids(self) -> list[int]:
        return [body["event_id"] for body, *_ in self.messages]

    def first_arrivals(self) -> list[dict[str, Any]]:
        seen: set[int] = set()
        firsts = []
        for body, *_ in self.messages:
            if body["event_id"] not in seen:
                seen.add(body["event_id"])
                firsts.append(body)
        return firsts

    async def until(self, count: int, seconds: float) -> None:
        """Until `count` distinct events arrived (at most `seconds`)."""
        async with asyncio.timeout(seconds):
            while len(set(self.ids())) < count:
                self.arrived.clear()
                await self.arrived.wait()


@contextlib.asynccontextmanager
async def consumer(exchange: str) -> AsyncIterator[Received]:
    """A durable queue bound to every routing key of `exchange`, consumed through a
    robust connection (it reconnects after a broker restart; the queue keeps what was
    routed meanwhile). Deleted, with the exchange, at the end."""
    received = Received()
    connection: AbstractRobustConnection = await aio_pika.connect_robust(BROKER_URL)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=1000)
    topic = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(f"{exchange}.consumer", durable=True)
    await queue.bind(topic, "#")

    async def take(message: AbstractIncomingMessage) -> None:
        async with message.process():
            received.messages.append(
                (
                    json.loads(message.body),
                    message.message_id or "",
                    dict(message.headers),
                    message.routing_key or "",
                )
            )
            received.arrived.set()

    await queue.consume(take)
    try:
        yield received
    finally:
        with contextlib.suppress(Exception):
            await queue.delete(if_unused=False, if_empty=False)
            await topic.delete()
        await connection.close()


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


def event_schema() -> dict[str, Any]:
    """The message payload's schema from docs/asyncapi.yaml, with its components."""
    document = yaml.safe_load(ASYNCAPI.read_text())
    payload = document["components"]["messages"]["event"]["payload"]
    return {**payload, "components": document["components"]}


@functools.cache
def _validators() -> tuple[jsonschema_rs.Draft202012Validator, jsonschema_rs.Draft202012Validator]:
    """The payload's and the headers' validators, built once (a test may check thousands
    of messages)."""
    document = yaml.safe_load(ASYNCAPI.read_text())
    header_schema = document["components"]["messages"]["event"]["headers"]
    return (
        jsonschema_rs.Draft202012Validator(event_schema()),
        jsonschema_rs.Draft202012Validator(header_schema),
    )


def validate(body: dict[str, Any], headers: dict[str, Any]) -> None:
    payload, header = _validators()
    payload.validate(body)
    texts = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in headers.items()}
    header.validate(texts)
