from __future__ import annotations

import itertools
import pickle
import time
from typing import Any

from application.ports import StoredResponse
from application.runner import UseCase
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
