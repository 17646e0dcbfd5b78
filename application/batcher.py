"""Queue -> batches: what runs together, and when. Knows nothing of money or SQL.

Items queue and a batch is whatever queued while earlier batches were in flight,
taken once per turn of the event loop (an idle service waits for nothing: the first
item runs at once), up to `max_batch` in size, with up to `max_in_flight` batches
running at once. An item as big as a batch (a client's batch) is one already: it
runs at once, beside them. Two items sharing a key are never in flight together: the second
waits for the first to be answered.

A batch may give items back, each with a resource that another transaction holds
(a row locked elsewhere). They wait in a lane of that resource, together with
every item that names it later, in order, and the lane's batches run on their own
(each first waits for the lane's resource), up to `max_waiting` lanes at once, so
the queue behind them goes on without them.

An item that waited in the queue longer than `max_wait` is not run: it fails with
StoreUnavailable, nothing done, as soon as another item comes or the queue moves
(`shed` is told how many). While the store stalls (a frozen server: each batch ends
only at its statements' time limit), items arrive faster than batches end; without
a bound, every one would wait for all those before it, long after its caller gave
up, and then run.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from application.errors import StoreUnavailable

logger = logging.getLogger("balance.batches")


class Item(Protocol):
    @property
    def future(self) -> asyncio.Future[Any]: ...

    @property
    def keys(self) -> Iterable[Hashable]: ...

    @property
    def resources(self) -> Iterable[Hashable]: ...

    @property
    def size(self) -> int: ...


T = TypeVar("T", bound=Item)
Run = Callable[[list[T], Any], Awaitable[Mapping[T, Any]]]
"""Runs a batch (first waiting for a lane's resource, or None) and answers its items,
but for those it gives back, each with the resource it found held."""


class Batcher(Generic[T]):
    def __init__(
        self,
        run: Run[T],
        *,
        max_batch: int,
        max_in_flight: int,
        max_waiting: int = 2,
        max_wait: float = math.inf,
        shed: Callable[[int], None] | None = None,
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._max_waiting = max_waiting
        self._max_wait = max_wait
        self._shed = shed
        self._queue: deque[T] = deque()
        self._arrived: dict[T, float] = {}  # when each item of the queue came
        self._lanes: dict[Hashable, deque[T]] = {}
        self._lanes_running: set[Hashable] = set()
        self._in_flight = 0
        self._claims: dict[Hashable, T] = {}  # keys of the items in flight
        self._due = False
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, item: T) -> None:
        lane = next((r for r in item.resources if r in self._lanes), None) if self._lanes else None
        if lane is not None:
            self._lanes[lane].append(item)
        elif self._whole(item) and self._free(item) and not self._queued_with(item):
            self._claim(item)  # a batch already (a client's): it runs at once, on its own
            self._start([item], None, counted=False)
            return
        else:
            self._arrived[item] = asyncio.get_running_loop().time()
            self._queue.append(item)
        self._dispatch_soon()

    def _whole(self, item: T) -> bool:
        """A batch already: many commands (a client's batch), as many as a batch takes."""
        return item.size > 1 and item.size >= self._max_batch

    def _free(self, item: T) -> bool:
        """No other item in flight holds one of its keys."""
        return not any(self._claims.get(key, item) is not item for key in item.keys)

    def _queued_with(self, item: T) -> bool:
        """An item queued before it shares one of its keys: it must wait its turn."""
        keys = set(item.keys)
        waiting = [self._queue, *self._lanes.values()]
        return bool(keys) and any(keys.intersection(other.keys) for q in waiting for other in q)

    def _claim(self, item: T) -> None:
        for key in item.keys:
            self._claims[key] = item

    def _dispatch_soon(self) -> None:
        """Dispatch once the items arriving in this turn of the event loop queued."""
        if not self._due:
            self._due = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def _dispatch(self) -> None:
        """Once a turn in which an item came or a batch ended: the late ones answered
        first, then as many batches as may run."""
        self._due = False
        if self._queue:
            self._expire(asyncio.get_running_loop().time())
        while self._queue and self._in_flight < self._max_in_flight:
            batch = self._take(self._queue)
            if not batch:  # every queued item waits for a key in flight
                break
            self._in_flight += 1
            self._start(batch, None, counted=True)
        for lane, items in self._lanes.items():
            if len(self._lanes_running) >= self._max_waiting:
                break
            if lane not in self._lanes_running and (batch := self._take(items)):
                self._lanes_running.add(lane)
                self._start(batch, lane, counted=False)

    def _take(self, queue: deque[T]) -> list[T]:
        """The oldest items up to the batch size, at most one per key in flight."""
        batch: list[T] = []
        size = 0
        skipped: list[T] = []
        while queue and (not batch or size + queue[0].size <= self._max_batch):
            item = queue.popleft()
            if item.keys and not self._free(item):
                skipped.append(item)
                continue
            self._arrived.pop(item, None)  # a lane's items have no time
            self._claim(item)
            batch.append(item)
            size += item.size
        queue.extendleft(reversed(skipped))
        return batch

    def _expire(self, now: float) -> None:
        """Fails the items that waited in the queue past `max_wait`. The queue is in the
        order they came (an item skipped goes back to the front, before the younger), so
        they are its first ones."""
        since = now - self._max_wait
        late: list[T] = []
        while self._queue and self._arrived[self._queue[0]] < since:
            item = self._queue.popleft()
            del self._arrived[item]
            late.append(item)
        if not late:
            return
        waited = StoreUnavailable(
            f"the request waited over {self._max_wait:g} s for its turn (the database is"
            " slow, or the service overloaded) and was not run"
        )
        _fail(late, waited)
        if self._shed is not None:
            self._shed(len(late))

    def _start(self, batch: list[T], lane: Hashable | None, *, counted: bool) -> None:
        """`counted`: one of the `max_in_flight` batches of the queue."""
        task = asyncio.get_running_loop().create_task(self._run_batch(batch, lane, counted))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, batch: list[T], lane: Hashable | None, counted: bool) -> None:
        given_back: Mapping[T, Hashable] = {}
        try:
            given_back = await self._run(batch, lane)
        except BaseException as error:  # no caller may wait forever
            logger.exception("a batch failed outside its error handling")
            _fail(batch, error)
            if not isinstance(error, Exception):
                raise
        finally:
            self._finish(batch, lane, counted, given_back)

    def _finish(
        self,
        batch: list[T],
        lane: Hashable | None,
        counted: bool,
        given_back: Mapping[T, Hashable],
    ) -> None:
        if counted:
            self._in_flight -= 1
        if lane is not None:
            self._lanes_running.discard(lane)
        for item, resource in given_back.items():
            self._lanes.setdefault(resource, deque()).append(item)
        for item in batch:
            # Answered, or failed: its keys are free. One given back still holds them
            # (a caller that went away cancelled its future, not its item).
            if item not in given_back:
                for key in item.keys:
                    self._claims.pop(key, None)
        if lane is not None and not self._lanes[lane] and lane not in given_back.values():
            del self._lanes[lane]
        if self._queue or self._lanes:
            self._dispatch_soon()


def _fail(items: Iterable[Item], error: BaseException) -> None:
    failure = error if isinstance(error, Exception) else StoreUnavailable("stopped")
    for item in items:
        if not item.future.done():
            item.future.set_exception(failure)
