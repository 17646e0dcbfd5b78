"""The relay: events from the outbox to the broker, in `event_id` order, at least once.

One relay publishes at a time: it holds a lease in the store, renewed as it goes; a
relay that stops (kill -9 included) lets its lease run out and another takes over
from the last event the broker confirmed. Events are published in batches and marked
sent only once the broker has confirmed every one (publisher confirms), so after a
crash some are sent again, with the same id: consumers drop repeats by `event_id`.
While the broker is down, writes go on and the outbox grows; the relay retries with
backoff and says so in the lease row (`/health/ready` shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from application.errors import Outage, StoreUnavailable
from application.events import StoredEvent

if TYPE_CHECKING:
    from application.ports import Events

logger = logging.getLogger("balance.relay")


@dataclass(frozen=True, slots=True)
class Lease:
    holder: str
    sent_upto: int
    """Every event up to this one was confirmed by the broker."""


@dataclass(frozen=True, slots=True)
class OutboxState:
    last_id: int
    sent_upto: int
    relay: str | None
    """The relay holding the lease, if one does."""
    broker: str | None
    """How the relay holding the lease finds the broker."""
    oldest_unsent_seconds: float

    @property
    def unsent(self) -> int:
        return self.last_id - self.sent_upto


class Outbox(Protocol):
    """The store's side of the relay, one call a statement."""

    events: Events

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def take(self, holder: str, lease_ms: int, broker: str) -> Lease | None:
        """The lease, if free, expired or ours (renewed); None if another relay holds it."""
        ...

    async def sent(self, holder: str, upto: int, lease_ms: int) -> bool:
        """Every event up to `upto` is confirmed; False if the lease is no longer ours."""
        ...

    async def release(self, holder: str) -> None: ...

    async def refusal(self) -> str | None:
        """Why this code must not relay from the store's schema: a later version's,
        naming as the oldest code that keeps working on it a revision this code does
        not know (migrations/README.md, rule 5); None: it may."""
        ...

    async def state(self) -> OutboxState: ...

    async def prune(self, days: int, limit: int = 10_000) -> int: ...


class RelayTooOld(Exception):
    """The schema moved past this code while it relayed (a later version migrated it
    and raised its floor): the relay gives its lease back and stops."""


class PublishFailed(Exception):
    """The broker did not confirm every event of a batch (or is unreachable)."""


class Publisher(Protocol):
    async def connect(self) -> None: ...

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        """Every event published, returning once the broker confirmed them all."""
        ...

    async def close(self) -> None: ...


class RelayObserver(Protocol):
    def published(self, events: int) -> None: ...


@dataclass(slots=True)
class RelaySettings:
    batch: int = 1000
    in_flight: int = 4
    """Batches published and awaiting their confirms at once."""
    lease_ms: int = 5000
    idle_seconds: float = 0.05
    """How long to wait when nothing is unsent."""
    schema_check_seconds: float = 30.0
    """How often the relay asks whether the schema moved past this code."""
    max_backoff_seconds: float = 5.0


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Relay:
    def __init__(
        self,
        outbox: Callable[[], Outbox],
        publisher: Publisher,
        observer: RelayObserver | None = None,
        settings: RelaySettings | None = None,
        holder: str | None = None,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._observer = observer
        self._settings = settings or RelaySettings()
        self.holder = holder or holder_name()
        self._connected = False
        self.broker = "connecting"
        self._schema_checked = -math.inf

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Until `stop` is set (or cancelled): hold the lease, publish, mark sent. A
        database that is down is said once a reason, and again when it answers (not a
        traceback at every try for as long as the outage lasts)."""
        stop = stop or asyncio.Event()
        backoff = 0.1
        outage = Outage()
        try:
            while not stop.is_set():
                try:
                    busy = await self.step(stop)
                except RelayTooOld:
                    raise  # this process stops; a relay of newer code goes on
                except StoreUnavailable as error:
                    if outage.began(error):
                        logger.warning(
                            "relay %s: %s; trying again, every %g s at most",
                            self.holder,
                            error,
                            self._settings.max_backoff_seconds,
                        )
                except PublishFailed as error:
                    self.broker = f"unreachable: {error}"[:200]
                    logger.warning("broker: %s; retrying in %.1f s", error, backoff)
                    await self._disconnect()
                except Exception:
                    logger.exception("relay step failed; retrying in %.1f s", backoff)
                else:
                    backoff = 0.1
                    if outage.ended():
                        logger.info("relay %s: the database answers again", self.holder)
                    if not busy:
                        await _wait(stop, self._settings.idle_seconds)
                    continue
                await _wait(stop, backoff)  # after a failure, longer each time
                backoff = min(backoff * 2, self._settings.max_backoff_seconds)
        finally:
            await self._disconnect()
            with contextlib.suppress(Exception):
                async with self._outbox() as outbox:
                    await outbox.release(self.holder)

    async def step(self, stop: asyncio.Event | None = None) -> bool:
        """One round: take (or renew) the lease, then publish all there is; whether it
        published anything."""
        settings = self._settings
        async with self._outbox() as outbox:
            if time.monotonic() - self._schema_checked >= settings.schema_check_seconds:
                if (refusal := await outbox.refusal()) is not None:
                    raise RelayTooOld(refusal)
                self._schema_checked = time.monotonic()
            lease = await outbox.take(self.holder, settings.lease_ms, self.broker)
            if lease is None:
                await asyncio.sleep(settings.lease_ms / 5000)
                return False
            if not self._connected:
                await self._connect()
                await outbox.take(self.holder, settings.lease_ms, self.broker)
        return await self._pump(lease.sent_upto, stop)

    async def _pump(self, after: int, stop: asyncio.Event | None) -> bool:
        """Batches in order, up to `in_flight` of them published and awaiting their
        confirms at once (the next is read and encoded while the broker confirms the
        last); each marked sent, in order, once all of it and all before it are."""
        settings = self._settings
        flying: deque[tuple[int, int, asyncio.Task[None]]] = deque()
        published = False
        try:
            while True:
                if len(flying) < settings.in_flight and not (stop and stop.is_set()):
                    async with self._outbox() as outbox:
                        events = await outbox.events.after(after, settings.batch)
                    if events:
                        after = events[-1].event_id
                        task = asyncio.create_task(self._publisher.publish(events))
                        flying.append((after, len(events), task))
                        continue
                if not flying:
                    return published
                last, count, task = flying.popleft()
                await task
                async with self._outbox() as outbox:
                    kept = await outbox.sent(self.holder, last, settings.lease_ms)
                if not kept:
                    logger.warning("relay %s lost its lease; another relay goes on", self.holder)
                    return published
                if self._observer is not None:
                    self._observer.published(count)
                published = True
        finally:
            for _, _, task in flying:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def _connect(self) -> None:
        try:
            await self._publisher.connect()
        except Exception as error:
            raise PublishFailed(str(error) or type(error).__name__) from error
        self._connected = True
        self.broker = "connected"
        logger.info("relay %s connected to the broker", self.holder)

    async def _disconnect(self) -> None:
        if self._connected:
            self._connected = False
            with contextlib.suppress(Exception):
                await self._publisher.close()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
