"""Money movements applied in batches: many commands, one database transaction.

Each request's command joins a queue and waits for its own answer. A batch is what
queued while earlier batches were in flight, up to `max_batch` (an idle service
waits for nothing: the first command runs at once), and up to `max_in_flight`
batches run at once, one per pooled connection. A batch reads the answers stored
under its Idempotency-Keys, locks every user and order it names (ascending, so
batches never deadlock), applies each command in arrival order through its use
case against the locked rows, writes everything in one statement and commits.

Each command gets the answer it would get alone: a refusal writes nothing and
leaves the rest of the batch alone; a database error that one command causes is
isolated by splitting the batch until that command runs alone; a passing failure
before commit runs the batch again; an unknown commit outcome is retried only for
commands under a key (a replay is then safe), the others get 503.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from application.errors import (
    ApplicationError,
    ConcurrentUpdate,
    IdempotencyKeyReused,
    OperationRefused,
    StoreUnavailable,
)
from application.expire import expire_if_due
from application.locked import BatchState, Movement
from application.ports import (
    IdempotencyRecord,
    Locked,
    MovementBatch,
    MovementObserver,
    Stamp,
    StoredResponse,
)
from application.results import wrote
from domain.errors import DomainError
from domain.money import Money

C = TypeVar("C", bound="Command")
R = TypeVar("R")
UseCase = Callable[[C, Movement], Awaitable[R]]
Render = Callable[[R], StoredResponse]

logger = logging.getLogger("balance.batches")


class Command(Protocol):
    """A money movement's request, as its use case takes it."""

    @property
    def user_ids(self) -> tuple[int, ...]:
        """The users whose rows it may lock."""
        ...

    @property
    def order_ids(self) -> tuple[int, ...]:
        """The orders whose reservations it may read or change."""
        ...

    def canonical(self) -> tuple[object, ...]:
        """(operation, form version, *values): what makes two requests the same one."""
        ...


def fingerprint(command: Command) -> str:
    """Same request -> same fingerprint, across deploys: a versioned canonical form
    of the values a client sent, not of how the code names them."""
    form = json.dumps(command.canonical(), separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(form.encode()).hexdigest()


def legacy_fingerprint(use_case: Callable[..., object], command: object) -> str:
    """The fingerprint keys were stored under before the canonical form: still honoured,
    so a retry that spans the deploy replays."""
    return hashlib.sha256(f"{use_case.__name__}:{command!r}".encode()).hexdigest()


@dataclass(eq=False, slots=True)
class Job:
    use_case: UseCase[Any, Any]
    command: Command
    render: Render[Any]
    key: str | None
    future: asyncio.Future[StoredResponse]
    fingerprint: str = ""

    def same_request(self, record: IdempotencyRecord) -> bool:
        return record.fingerprint in (
            self.fingerprint,
            legacy_fingerprint(self.use_case, self.command),
        )


@dataclass(slots=True)
class Outcome:
    response: StoredResponse | None = None
    refusal: Exception | None = None
    result: object = None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ClientBatch:
    """Operations a client sent together (`POST /v1/batches`)."""

    jobs: list[Job]
    atomic: bool
    render: Callable[[list[Outcome]], StoredResponse]
    key: str | None = None
    fingerprint: str = ""


class _Unobserved:
    def applied(self, kind: str, amount_kopecks: int | None) -> None:
        pass

    def replayed(self, kind: str) -> None:
        pass

    def committed(self, movements: int) -> None:
        pass

    def expired(self, reservations: int) -> None:
        pass


class MoneyMovements:
    def __init__(
        self,
        store: Callable[[], MovementBatch],
        *,
        max_batch: int = 64,
        max_in_flight: int = 4,
        attempts: int = 4,
        backoff: float = 0.005,
        observer: MovementObserver | None = None,
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._attempts = attempts
        self._backoff = backoff
        self._observer = observer or _Unobserved()
        self._queue: deque[Job] = deque()
        self._in_flight = 0
        self._dispatch_due = False
        self._running: set[asyncio.Task[None]] = set()
        self._busy_keys: set[str] = set()  # keys of the commands in flight

    def job(
        self,
        use_case: UseCase[C, R],
        command: C,
        render: Render[R],
        idempotency_key: str | None = None,
    ) -> Job:
        return Job(
            use_case,
            command,
            render,
            idempotency_key,
            asyncio.get_running_loop().create_future(),
            fingerprint(command) if idempotency_key is not None else "",
        )

    async def execute(
        self,
        use_case: UseCase[C, R],
        command: C,
        render: Render[R],
        idempotency_key: str | None = None,
    ) -> StoredResponse:
        """Apply the command once, in the next batch, and answer with its rendered result."""
        job = self.job(use_case, command, render, idempotency_key)
        job.future.add_done_callback(_retrieved)
        self._queue.append(job)
        self._dispatch_soon()
        # A caller that goes away does not take its command out of a running batch.
        return await asyncio.shield(job.future)

    def _dispatch_soon(self) -> None:
        """Dispatch once the commands arriving in this turn of the event loop queued."""
        if not self._dispatch_due:
            self._dispatch_due = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._dispatch_due = False
        while self._queue and self._in_flight < self._max_in_flight:
            batch = self._next_batch()
            if not batch:  # every queued command waits for a key in flight
                return
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _next_batch(self) -> list[Job]:
        """The oldest commands, at most one per key in flight: a second command under
        a key waits for the first's answer (then replays it), as it would alone."""
        batch: list[Job] = []
        waiting: list[Job] = []
        while self._queue and len(batch) < self._max_batch:
            job = self._queue.popleft()
            if job.key is not None and job.key in self._busy_keys:
                waiting.append(job)
                continue
            if job.key is not None:
                self._busy_keys.add(job.key)
            batch.append(job)
        self._queue.extendleft(reversed(waiting))
        return batch

    async def _run(self, jobs: list[Job]) -> None:
        try:
            await self._settle(jobs)
        except BaseException as error:  # no caller may wait forever
            logger.exception("a batch failed outside its error handling")
            _fail(jobs, error if isinstance(error, Exception) else StoreUnavailable("stopped"))
            if not isinstance(error, Exception):
                raise
        finally:
            self._in_flight -= 1
            self._busy_keys.difference_update(job.key for job in jobs if job.key is not None)
            if self._queue:
                self._dispatch_soon()

    async def _settle(self, jobs: list[Job]) -> None:
        """Run the batch until every command has its answer."""
        pending = jobs
        for attempt in range(1, self._attempts + 1):
            try:
                outcomes = await self._apply(pending)
            except ConcurrentUpdate:
                failure: StoreUnavailable = StoreUnavailable("too much contention, try again")
            except StoreUnavailable as error:
                failure = error
                if not error.outcome_known:  # the commit may have landed
                    _fail([j for j in pending if j.key is None], error)
                    pending = [j for j in pending if j.key is not None]
                    if not pending:
                        return
            except Exception as error:  # a command the database refused: find it
                await self._isolate(pending, error)
                return
            else:
                self._deliver(outcomes)
                return
            if attempt == self._attempts:
                _fail(pending, failure)
                return
            await asyncio.sleep(self._backoff * attempt * random.random())

    async def _isolate(self, jobs: list[Job], error: Exception) -> None:
        """One command made the database refuse the batch: split until it runs alone."""
        if len(jobs) == 1:
            if not isinstance(error, ApplicationError):
                logger.error("a money movement failed", exc_info=error)
            _fail(jobs, error)
            return
        middle = len(jobs) // 2
        await self._settle(jobs[:middle])
        await self._settle(jobs[middle:])

    async def _apply(self, jobs: list[Job]) -> dict[Job, Outcome]:
        outcomes: dict[Job, Outcome] = {}
        expired = 0
        async with self._store() as batch:
            keys = sorted({job.key for job in jobs if job.key is not None})
            stored = await batch.answers(keys) if keys else {}
            todo: list[Job] = []
            for job in jobs:
                record = stored.get(job.key) if job.key is not None else None
                if record is None:
                    todo.append(job)
                else:
                    outcomes[job] = _answered(job, record)
            if todo:
                state, stamp, expired = await _lock(batch, todo)
                for job in todo:
                    outcomes[job] = await _apply_one(job, state)
                changes = state.changes()
                if changes:
                    await batch.write(changes, stamp)
            await batch.commit()
        self._observer.committed(len(jobs))
        self._observer.expired(expired)
        return outcomes

    def _deliver(self, outcomes: dict[Job, Outcome]) -> None:
        for job, outcome in outcomes.items():
            self._observe(job, outcome)
            if job.future.done():
                continue
            if outcome.refusal is not None:
                job.future.set_exception(outcome.refusal)
            elif outcome.response is not None:
                job.future.set_result(outcome.response)

    def _observe(self, job: Job, outcome: Outcome) -> None:
        kind = job.use_case.__name__
        if outcome.replayed:
            self._observer.replayed(kind)
        elif outcome.refusal is None and wrote(outcome.result):
            # A reservation closed or reserved again moved nothing.
            amount = getattr(job.command, "amount", None)
            self._observer.applied(kind, amount.kopecks if isinstance(amount, Money) else None)

    async def execute_batch(self, batch: ClientBatch) -> StoredResponse:
        """A batch the client made: its operations in array order, in one database
        transaction, the whole answer rendered by `batch.render` and stored under
        `batch.key`. An atomic batch with a refused operation raises
        `OperationRefused` and writes nothing."""
        for attempt in range(1, self._attempts + 1):
            try:
                return await self._apply_client(batch)
            except ConcurrentUpdate:
                failure = StoreUnavailable("too much contention, try again")
            except StoreUnavailable as error:
                if not error.outcome_known and batch.key is None:
                    raise  # only the batch's key makes a retry safe
                failure = error
            if attempt == self._attempts:
                raise failure
            await asyncio.sleep(self._backoff * attempt * random.random())
        raise AssertionError("unreachable")  # pragma: no cover

    async def _apply_client(self, batch: ClientBatch) -> StoredResponse:
        jobs = batch.jobs
        async with self._store() as store:
            keys = {job.key for job in jobs if job.key is not None}
            if batch.key is not None:
                keys.add(batch.key)
            stored = await store.answers(sorted(keys)) if keys else {}
            if batch.key is not None and batch.key in stored:
                if stored[batch.key].fingerprint != batch.fingerprint:
                    raise IdempotencyKeyReused
                return stored[batch.key].response
            todo = [job for job in jobs if job.key is None or job.key not in stored]
            state, stamp, expired = await _lock(store, todo)
            outcomes: list[Outcome] = []
            for index, job in enumerate(jobs):
                record = stored.get(job.key) or state.answers.get(job.key) if job.key else None
                outcome = _answered(job, record) if record else await _apply_one(job, state)
                if batch.atomic and outcome.refusal is not None:
                    raise OperationRefused(index, outcome.refusal)
                outcomes.append(outcome)
            response = batch.render(outcomes)
            if batch.key is not None:
                state.answers[batch.key] = IdempotencyRecord(batch.fingerprint, response)
            changes = state.changes()
            if changes:
                await store.write(changes, stamp)
            await store.commit()
        self._observer.committed(len(jobs))
        self._observer.expired(expired)
        for job, outcome in zip(jobs, outcomes, strict=True):
            self._observe(job, outcome)
        return response


def _answered(job: Job, record: IdempotencyRecord) -> Outcome:
    """A command whose key already has an answer: replayed, or refused as another request."""
    if job.same_request(record):
        return Outcome(record.response, replayed=True)
    return Outcome(refusal=IdempotencyKeyReused())


async def _lock(store: MovementBatch, jobs: list[Job]) -> tuple[BatchState, Stamp, int]:
    """Lock every user, then every order, the commands name; stamp the batch after
    the locks; expire the due reservations it now holds. Returns the state the
    commands run on, the stamp, and how many reservations expired."""
    users = sorted({user for job in jobs for user in job.command.user_ids})
    orders = sorted({order for job in jobs for order in job.command.order_ids})
    locked = await store.lock(users, orders)
    stamp = await store.stamp(_transactions_at_most(jobs, locked))
    state = BatchState(locked, stamp, users, orders)
    return state, stamp, await _expire_due(state, orders)


def _transactions_at_most(jobs: list[Job], locked: Locked) -> int:
    """Ids to take: one a command, and one a locked reservation that may expire first."""
    may_expire = [r for r in locked.reservations.values() if r.is_open and r.expires_at]
    return len(jobs) + len(may_expire)


async def _expire_due(state: BatchState, order_ids: list[int]) -> int:
    """Before any command: the locked reservations whose hold ran out give their
    money back, so a command that touches one finds it expired."""
    expired = 0
    for order_id in order_ids:
        movement = Movement(state)
        if await expire_if_due(order_id, movement):
            movement.merge()
            expired += 1
    return expired


async def _apply_one(job: Job, state: BatchState) -> Outcome:
    movement = Movement(state)
    try:
        result = await job.use_case(job.command, movement)
    except DomainError as refusal:
        return Outcome(refusal=refusal)
    response = job.render(result)
    movement.merge()
    if job.key is not None:
        state.answers[job.key] = IdempotencyRecord(job.fingerprint, response)
    return Outcome(response, result=result)


def _retrieved(future: asyncio.Future[StoredResponse]) -> None:
    """A caller that went away leaves its answer unread: that is no error to report."""
    if not future.cancelled():
        future.exception()


def _fail(jobs: list[Job], error: BaseException) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(error)
