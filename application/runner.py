"""The movement engine: many money movements, one database transaction.

Each client call is a `Request` (work.py) that waits for its own answer. The
batcher (batcher.py) cuts the queue into batches; each batch runs in phases, each
readable alone:

    read    lock every row the batch names, read its stored answers, stamp it
            (one round trip: the store's `lock`)
    apply   locked rows + requests -> answers + one write set (apply.py, pure),
            the answers under every key the requests name among them, refusals too
    write   the write set in one statement (the store's `write`)
    settle  commit, then answer every request and tell the observer (`_settle`)

A failed attempt is handed to one decision (policy.py): run again, run apart, or
answer with the failure. A batch's first attempt waits in turn for rows another
batch holds (briefly: the store's `in_turn`); later attempts skip rows held
elsewhere, and the requests that need them are given back to the batcher, which
runs them in a batch of their own that first waits for that row, holding nothing
else, so a row held for long delays only the requests that need it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from application.apply import Applied, apply
from application.batcher import Batcher
from application.errors import ApplicationError, ConcurrentUpdate, RefusedBefore
from application.policy import after_failure
from application.ports import Locked, MovementBatch, MovementObserver, Resource, StoredResponse
from application.results import wrote
from application.work import (
    Answer,
    C,
    Command,
    Job,
    Outcome,
    R,
    Render,
    RenderRefusal,
    Request,
    UseCase,
    look_at,
    single,
    unrendered,
)
from domain.money import Money

__all__ = [
    "Command",
    "Job",
    "MoneyMovements",
    "Outcome",
    "Render",
    "Request",
    "Unobserved",
    "UseCase",
]

logger = logging.getLogger("balance.batches")


class Unobserved:
    """A MovementObserver that ignores everything: the runner's without one, and the
    base of one that watches a part."""

    def applied(self, kind: str, caller: str | None, movements: int, kopecks: int) -> None:
        pass

    def replayed(self, kind: str) -> None:
        pass

    def committed(self, movements: int) -> None:
        pass

    def expired(self, reservations: int) -> None:
        pass

    def shed(self, requests: int) -> None:
        pass


@dataclass(frozen=True, slots=True)
class _Attempt:
    applied: Applied
    given_back: dict[Request, Resource]


class MoneyMovements:
    def __init__(
        self,
        store: Callable[[], MovementBatch],
        *,
        max_batch: int = 64,
        max_in_flight: int = 4,
        max_waiting: int = 2,
        attempts: int = 4,
        races: int = 16,
        retry_within: float = 2.0,
        backoff: float = 0.005,
        max_wait: float = math.inf,
        observer: MovementObserver | None = None,
        refused: RenderRefusal = unrendered,
    ) -> None:
        """`refused`: a refusal as its client is sent it, stored under its keys."""
        self._store = store
        self._refused = refused
        self._attempts = attempts
        self._races = races
        self._retry_within = retry_within
        self._backoff = backoff
        self._observer = observer or Unobserved()
        self._batcher = Batcher(
            self._run,
            max_batch=max_batch,
            max_in_flight=max_in_flight,
            max_waiting=max_waiting,
            max_wait=max_wait,
            shed=self._observer.shed,
        )

    async def execute(
        self,
        use_case: UseCase[C, R],
        command: C,
        render: Render[R],
        idempotency_key: str | None = None,
        caller: str | None = None,
    ) -> StoredResponse:
        """Apply the command once, in the next batch, and answer with its rendered result;
        `caller`: the name of who sent it, recorded with it."""
        job = Job.of(use_case, command, render, idempotency_key, caller)
        answer = await self.submit(single(job, caller))
        return answer.response

    async def look_at(self, user_id: int, order_id: int) -> None:
        """Lock a reservation and its owner in a batch: a hold that ran out expires."""
        await self.submit(look_at(user_id, order_id))

    async def submit(self, request: Request) -> Answer:
        """The request's answer, once its batch committed. A caller that goes away
        (cancelled) cancels the request's future, not the request: queued or in a
        batch already, it is applied all the same, and its answer, which no one waits
        for, is dropped (`_settle`). A retry under the same key is answered from what
        it did."""
        future = request.future
        self._batcher.submit(request)
        try:
            return await future
        finally:
            if future.done() and not future.cancelled():
                future.exception()  # answered as the caller went: read, so not reported
            # A refusal raised here holds this frame in its traceback; the frame must
            # not hold the request, whose future holds the refusal (a cycle).
            del request, future

    async def _run(self, requests: list[Request], lane: Resource | None) -> dict[Request, Resource]:
        """Run a batch until every request is answered or given back."""
        pending = requests
        given_back: dict[Request, Resource] = {}
        loop = asyncio.get_running_loop()
        started = loop.time()
        # A race lost (rows the batch creates, created meanwhile) is counted apart from
        # the other failures: each one leaves a row the batch names in place for the next
        # attempt to find, so they end; a batch that opens many accounts at once, while
        # others open them too, can lose more of them in a row than `attempts`.
        failures = races = 0
        while True:
            first = failures + races == 0
            try:
                # First in turn (batches wait for one another's rows, briefly); once
                # that timed out, or in a lane, skipping the rows held elsewhere.
                done = await self._attempt(pending, lane, in_turn=first and lane is None)
            except Exception as error:
                if isinstance(error, ConcurrentUpdate):
                    races += 1
                else:
                    failures += 1
                step = after_failure(
                    error,
                    pending,
                    last=failures >= self._attempts or races >= self._races,
                    slow=loop.time() - started >= self._retry_within,
                )
                _fail(step.failed)
                for part in step.apart:
                    given_back |= await self._run(part, lane)
                pending = step.retry
                if not pending:
                    return given_back
                await asyncio.sleep(self._backoff * (failures + races) * random.random())
            else:
                self._settle(done.applied)
                return given_back | done.given_back

    async def _attempt(
        self, requests: list[Request], lane: Resource | None, *, in_turn: bool
    ) -> _Attempt:
        users = sorted({user for request in requests for user in request.user_ids})
        orders = sorted({order for request in requests for order in request.order_ids})
        keys = sorted({key for request in requests for key in request.keys})
        movements = [
            job.key for request in requests for job in request.jobs if job.command.moves_money
        ]
        async with self._store() as store:
            locked = await store.lock(
                users, orders, keys, movements, wait_for=lane, in_turn=in_turn
            )
            ready, given_back = _ready(requests, locked)
            applied = apply(locked, ready, self._refused)
            if applied.changes:
                await store.write(applied.changes)
            await store.commit()
        return _Attempt(applied, given_back)

    def _settle(self, applied: Applied) -> None:
        """After the commit: every answer delivered, every outcome observed, here only."""
        if applied.answers:
            self._observer.committed(sum(request.size for request in applied.answers))
        self._observer.expired(applied.expired)
        # (kind, caller): [movements, kopecks], counted once a batch
        moved: dict[tuple[str, str | None], list[int]] = {}
        for request, answer in applied.answers.items():
            if isinstance(answer, RefusedBefore) or (
                isinstance(answer, Answer) and answer.response.replayed and not answer.outcomes
            ):  # sent again under the request's own key (or its one job's, refused)
                self._observer.replayed(_kind(request))
            elif not isinstance(answer, Exception):
                for job, outcome in zip(request.jobs, answer.outcomes, strict=False):
                    self._observe(job, outcome, moved, request.caller)
            if request.future.done():  # its caller went away (cancelled)
                continue
            if isinstance(answer, Exception):
                request.future.set_exception(answer)
            else:
                request.future.set_result(answer)
        for (kind, caller), (movements, kopecks) in moved.items():
            self._observer.applied(kind, caller, movements, kopecks)

    def _observe(
        self,
        job: Job,
        outcome: Outcome,
        moved: dict[tuple[str, str | None], list[int]],
        caller: str | None,
    ) -> None:
        if outcome.replayed:
            self._observer.replayed(job.kind)
        elif outcome.refusal is None and wrote(outcome.result):
            # A reservation closed or reserved again moved nothing.
            amount = getattr(job.command, "amount", None)
            tally = moved.get((job.kind, caller))
            if tally is None:
                tally = moved[job.kind, caller] = [0, 0]
            tally[0] += 1
            tally[1] += amount.kopecks if isinstance(amount, Money) else 0


def _kind(request: Request) -> str:
    """What a replay is counted as: its one movement's kind, or a client's batch."""
    return request.jobs[0].kind if request.key is None and len(request.jobs) == 1 else "batch"


def _ready(
    requests: Sequence[Request], locked: Locked
) -> tuple[list[Request], dict[Request, Resource]]:
    """The requests whose rows the batch holds, and the others with a row held elsewhere."""
    if not (locked.busy_users or locked.busy_orders):
        return list(requests), {}
    busy: set[Resource] = {("user", u) for u in locked.busy_users}
    busy |= {("order", o) for o in locked.busy_orders}
    ready: list[Request] = []
    given_back: dict[Request, Resource] = {}
    for request in requests:
        held = next((r for r in request.resources if r in busy), None)
        if held is None:
            ready.append(request)
        else:
            given_back[request] = held
    return ready, given_back


def _fail(failed: list[tuple[Request, Exception]]) -> None:
    for request, error in failed:
        if not isinstance(error, ApplicationError):
            logger.error("a money movement failed", exc_info=error)
        if not request.future.done():
            request.future.set_exception(error)
