from __future__ import annotations

import itertools
import pickle
import time
from collections.abc import Sequence
from typing import Any

from application.events import StoredEvent, events_after
from application.ports import Locked, MovementBatch, StoredResponse
from application.runner import MoneyMovements, UseCase
from application.work import Outcome
from domain.money import Money
from tests.conftest import Adapter


def rub(value: str) -> Money:
    return Money.amount(value)


def keep(result: object) -> StoredResponse:
    """Render a result so a replay can hand back the very same object."""
    return StoredResponse(200, pickle.dumps(result))


_turns = itertools.count()


async def run(
    adapter: Adapter,
    use_case: UseCase[Any, Any],
    command: Any,
    key: str | None = None,
    caller: str | None = None,
) -> Any:
    """Apply through one of the adapter's two workers, in turn, as `caller`'s request."""
    worker = adapter.workers[next(_turns) % len(adapter.workers)]
    return unpickled(await worker.execute(use_case, command, keep, key, caller))


def outcomes_of(outcomes: Sequence[Outcome]) -> StoredResponse:
    """Render a client batch's outcomes so a replay can hand back the very same ones."""
    return StoredResponse(
        200,
        pickle.dumps(
            [(o.response, o.replayed) if o.refusal is None else repr(o.refusal) for o in outcomes]
        ),
    )


async def every_event(adapter: Adapter, user_id: int | None = None) -> list[StoredEvent]:
    """The stored events (of one user), read through the pull API's query, a page of 3
    at a time."""
    found: list[StoredEvent] = []
    after = 0
    while page := await events_after(adapter.uow, after, 3, user_id):
        found += page
        after = page[-1].event_id
    return found


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


def blind_first(adapter: Adapter) -> tuple[MoneyMovements, list[int]]:
    """A worker whose batch's first lock reads no stored answer: as a PostgreSQL
    batch's lock does when it waited in turn for a row that another worker's
    transaction held, and that transaction stored the answer to the same keyed request
    (the lock's snapshot predates that commit; tests/integration/test_concurrency.py
    races it for real). Also the number of keys each lock was asked for."""
    locks: list[int] = []

    def batch() -> MovementBatch:
        store = adapter.batch()
        lock = store.lock

        async def first_blind(
            users: Sequence[int], orders: Sequence[int], keys: Sequence[str], *rest: Any, **kw: Any
        ) -> Locked:
            locks.append(len(keys))
            return await lock(users, orders, () if len(locks) == 1 else keys, *rest, **kw)

        store.lock = first_blind  # type: ignore[method-assign,assignment]
        return store

    return MoneyMovements(batch, max_in_flight=1), locks
