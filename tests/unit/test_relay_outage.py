"""The relay through a database outage: said once a reason, not a traceback at every
try (a full disk lasts minutes, and the relay tries every 5 s at most)."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Self, cast

import pytest

from application.errors import StoreUnavailable
from application.relay import Lease, Outbox, Publisher, Relay, RelaySettings


class Unreachable:
    """An outbox whose store is down for the first of `outage`'s reasons ("": up, and
    another relay holds the lease, so a step does nothing more)."""

    def __init__(self, outage: list[str], up: asyncio.Event) -> None:
        self._outage, self._up = outage, up

    async def __aenter__(self) -> Self:
        reason = self._outage.pop(0) if self._outage else ""
        if reason:
            raise StoreUnavailable(f"database unreachable: {reason}")
        if not self._outage:
            self._up.set()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def refusal(self) -> str | None:
        return None

    async def take(self, holder: str, lease_ms: int, broker: str) -> Lease | None:
        return None


async def test_a_database_down_is_said_once_a_reason_and_its_return_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = ["refused"] * 4 + ["timed out"] * 4 + [""] * 3
    up = asyncio.Event()
    relay = Relay(
        lambda: cast(Outbox, Unreachable(outage, up)),
        cast(Publisher, object()),  # never reached: the lease is another's
        settings=RelaySettings(lease_ms=5, idle_seconds=0, max_backoff_seconds=0.001),
        holder="r",
    )
    caplog.set_level(logging.INFO, logger="balance.relay")
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    await asyncio.wait_for(up.wait(), 5)
    stop.set()
    await asyncio.wait_for(running, 5)
    said = [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records]
    assert said == [
        (
            "WARNING",
            "relay r: database unreachable: refused; trying again, every 0.001 s at most",
            None,
        ),
        (
            "WARNING",
            "relay r: database unreachable: timed out; trying again, every 0.001 s at most",
            None,
        ),
        ("INFO", "relay r: the database answers again", None),
    ]
