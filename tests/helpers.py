from __future__ import annotations

import itertools
import pickle
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

from application.ports import Changes, Locked, MovementBatch, Resource, StoredResponse
from application.runner import MoneyMovements, UseCase
from domain.money import Money
from tests.conftest import Adapter


def rub(value: str) -> Money:
    return Money.amount(value)


def keep(result: object) -> StoredResponse:
    """Render a result so a replay can hand back the very same object."""
    return StoredResponse(200, pickle.dumps(result))


_turns = itertools.count()


async def run(
    adapter: Adapter, use_case: UseCase[Any, Any], command: Any, key: str | None = None
) -> Any:
    """Apply through one of the adapter's two workers, in turn."""
    worker = adapter.workers[next(_turns) % len(adapter.workers)]
    return unpickled(await worker.execute(use_case, command, keep, key))


def unpickled(stored: StoredResponse) -> Any:
    """The result `keep` rendered."""
    return pickle.loads(stored.body)


async def timed(call: Any) -> tuple[float, Any]:
    """How long the awaitable took, and what it gave or raised."""
    started = time.monotonic()
    try:
        outcome = await call
    except Exception as error:
        outcome = error
    return time.monotonic() - started, outcome


class BlindFirstLock(MovementBatch):
    """A batch whose first lock reads no stored answer: as a PostgreSQL batch's lock
    does when it waited in turn for a row that another worker's transaction held, and
    that transaction stored the answer to the same keyed request (the lock's snapshot
    predates that commit; tests/integration/test_concurrency.py races it for real)."""

    def __init__(self, inner: MovementBatch, locks: list[int]) -> None:
        self._inner = inner
        self._locks = locks

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, tb)

    async def lock(
        self,
        user_ids: Sequence[int],
        order_ids: Sequence[int],
        keys: Sequence[str],
        movements: Sequence[str | None],
        *,
        wait_for: Resource | None = None,
        in_turn: bool = False,
    ) -> Locked:
        self._locks.append(len(keys))
        blind = len(self._locks) == 1
        seen = () if blind else keys
        return await self._inner.lock(
            user_ids, order_ids, seen, movements, wait_for=wait_for, in_turn=in_turn
        )

    async def answered(self, keys: Sequence[str]) -> frozenset[str]:
        return await self._inner.answered(keys)

    async def write(self, changes: Changes) -> None:
        await self._inner.write(changes)

    async def commit(self) -> None:
        await self._inner.commit()


def blind_first(adapter: Adapter) -> tuple[MoneyMovements, list[int]]:
    locks: list[int] = []
    worker = MoneyMovements(lambda: BlindFirstLock(adapter.batch(), locks), max_in_flight=1)
    return worker, locks
