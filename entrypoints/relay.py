"""`balance relay`: the outbox to RabbitMQ, one process (serve starts one beside its
workers when BROKER_URL is set, unless RELAY=off). SIGTERM or SIGINT: it finishes the
batch in hand, gives its lease back and stops."""

from __future__ import annotations

import asyncio
import signal

from adapters.amqp.publisher import AmqpPublisher
from adapters.postgres.engine import create_engine
from adapters.postgres.events import PostgresOutbox
from application.relay import Relay, RelaySettings, RelayTooOld
from entrypoints.http.metrics import RelayMetrics
from entrypoints.settings import Settings


async def run_relay(settings: Settings) -> str | None:
    """Until SIGTERM or SIGINT; or why it stopped: the schema moved past this code."""
    assert settings.database_url is not None
    assert settings.broker_url is not None
    engine = create_engine(settings.database_url, pool_size=2, pooler=settings.pooler)
    relay = Relay(
        lambda: PostgresOutbox(engine),
        AmqpPublisher(settings.broker_url, settings.broker_exchange),
        RelayMetrics(),
        RelaySettings(lease_ms=settings.relay_lease_ms),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await relay.run(stop)
    except RelayTooOld as error:
        return str(error)
    finally:
        await engine.dispose()
    return None
