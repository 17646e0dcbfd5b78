"""The sweeper through an outage: said once, not a traceback a second."""

from __future__ import annotations

import asyncio
import logging

import pytest

from adapters.memory.store import InMemoryMovementBatch, InMemoryStore, InMemoryUnitOfWork
from application.errors import StoreUnavailable
from application.ports import UnitOfWork
from application.runner import MoneyMovements
from application.sweeper import Sweeper


async def test_a_store_down_is_logged_once_per_reason_and_its_return_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = InMemoryStore()
    outage = ["refused"] * 5 + ["timed out"] * 5 + [""] * 5  # "": up again
    swept = asyncio.Event()  # the outage is over and a sweep after it has begun

    def uow() -> UnitOfWork:
        reason = outage.pop(0) if outage else ""
        if reason:
            raise StoreUnavailable(f"database unreachable: {reason}")
        if not outage:
            swept.set()
        return InMemoryUnitOfWork(store)

    sweeper = Sweeper(
        uow, MoneyMovements(lambda: InMemoryMovementBatch(store)), lambda _: None, interval=0
    )
    caplog.set_level(logging.INFO, logger="balance.expiry")
    running = asyncio.create_task(sweeper.run())
    await asyncio.wait_for(swept.wait(), 5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    said = [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records]
    assert said == [
        (
            "WARNING",
            "expiry sweep failed, trying again every 0 s: database unreachable: refused",
            None,
        ),
        (
            "WARNING",
            "expiry sweep failed, trying again every 0 s: database unreachable: timed out",
            None,
        ),
        ("INFO", "expiry sweep works again", None),
    ]
