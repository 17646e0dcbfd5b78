"""The sweeper: holds end at expires_at without waiting for a request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from application.errors import Outage, StoreUnavailable
from application.ports import UnitOfWork
from application.runner import MoneyMovements

logger = logging.getLogger("balance.expiry")


class Sweeper:
    """Expires due reservations without waiting for a request: every `interval`
    seconds it reads the due ones (on the store's clock) and sends each to a batch
    that locks it and its owner, which expires it (`MoneyMovements.look_at`). Any
    number of workers and servers may sweep at once: the row locks and the guarded
    status make each reservation expire once."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        movements: MoneyMovements,
        overdue: Callable[[float], None],
        interval: float = 1.0,
        limit: int = 500,
    ) -> None:
        self._uow = uow
        self._movements = movements
        self._interval = interval
        self._limit = limit
        self._overdue = overdue

    async def sweep(self) -> int:
        """One pass: how many due reservations it sent to be expired."""
        async with self._uow() as uow:
            now, due = await uow.reservations.due(self._limit)
        oldest = min((r.expires_at for r in due if r.expires_at is not None), default=now)
        self._overdue((now - oldest).total_seconds())
        sent = [self._movements.look_at(r.user_id, r.order_id) for r in due]
        await asyncio.gather(*sent, return_exceptions=True)
        return len(due)

    async def run(self) -> None:
        """Sweep every `interval` seconds. A store that is down is said once, in a line,
        and again when the reason changes or the sweep works again (not a traceback a
        second a worker for as long as the outage lasts)."""
        outage = Outage()
        while True:
            try:
                await self.sweep()
            except StoreUnavailable as error:
                if outage.began(error):
                    logger.warning(
                        "expiry sweep failed, trying again every %g s: %s", self._interval, error
                    )
            except Exception:
                logger.warning("expiry sweep failed", exc_info=True)
            else:
                if outage.ended():
                    logger.info("expiry sweep works again")
            await asyncio.sleep(self._interval)
