"""What the movement engine is given and what it answers.

A `Job` is one command with its use case and how its result is answered. A
`Request` is what one client call asked for: one job (a deposit, a reserve...), or
a client's batch of them (`POST /v1/batches`), or no job at all but rows to look at
(a reservation whose hold may have run out). A request is answered as one: either
everything it kept is written with its answer, or, refused, nothing of it is.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

from application.errors import OperationRefused
from application.fingerprint import batch_fingerprint, fingerprint, legacy_fingerprint
from application.locked import Movement
from application.ports import IdempotencyRecord, Resource, StoredResponse

C = TypeVar("C", bound="Command")
R = TypeVar("R")
UseCase = Callable[[C, Movement], R]
Render = Callable[[R], StoredResponse]
RenderRefusal = Callable[[Exception], StoredResponse]
"""A refusal as its client is sent it: what a retry under its key is answered."""


def unrendered(refusal: Exception) -> StoredResponse:
    """A refusal as a runner with no HTTP in front of it stores it (tests, tools): its
    rule and words. The service stores the problem its client was sent
    (entrypoints/http/problems.py: `stored_refusal`)."""
    body = {"type": type(refusal).__name__, "status": 409, "detail": str(refusal)}
    return StoredResponse(409, json.dumps(body).encode())


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

    def legacy(self) -> str | None:
        """The request as 8b1b5a2 fingerprinted it (application/fingerprint.py)."""
        ...

    @property
    def moves_money(self) -> bool:
        """Whether it may record a ledger transaction (and so needs an id for one)."""
        ...


@dataclass(frozen=True, slots=True)
class Job:
    use_case: UseCase[Any, Any]
    command: Command
    render: Render[Any]
    key: str | None = None
    fingerprint: str = ""

    @classmethod
    def of(
        cls,
        use_case: UseCase[C, R],
        command: C,
        render: Render[R],
        key: str | None = None,
        caller: str | None = None,
    ) -> Job:
        """`caller`: the name of who sent it, part of what makes two requests the same."""
        return cls(use_case, command, render, key, fingerprint(command, caller) if key else "")

    @property
    def kind(self) -> str:
        return self.use_case.__name__

    def same_request(self, record: IdempotencyRecord) -> bool:
        """Whether a stored answer is this request's, in any form it was stored under:
        its own, with no caller named (stored by an unnamed token or before tokens had
        names: any caller's retry of the same values), or the legacy one."""
        if record.fingerprint == self.fingerprint:
            return True
        command = self.command
        return record.fingerprint in (fingerprint(command), legacy_fingerprint(command))


@dataclass(slots=True)
class Outcome:
    """What one job came to: its answer, or the rule that refused it."""

    response: StoredResponse | None = None
    refusal: Exception | None = None
    result: object = None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """A request's answer, and what each of its jobs came to (none when the request's
    own key replayed it)."""

    response: StoredResponse
    outcomes: Sequence[Outcome] = ()


AnswerAll = Callable[[Sequence[Outcome]], StoredResponse]
"""A request's answer from its jobs' outcomes; raising a refusal keeps nothing of it."""


@dataclass(eq=False, slots=True)
class Request:
    jobs: Sequence[Job]
    answer_all: AnswerAll
    key: str | None = None
    fingerprint: str = ""
    user_ids: tuple[int, ...] = ()
    order_ids: tuple[int, ...] = ()
    keys: tuple[str, ...] = ()
    """Its Idempotency-Keys: two requests sharing one never run at once."""
    caller: str | None = None
    """The name of who sent it, recorded with what it does."""
    unnamed: Callable[[], str] | None = None
    """A named caller's keyed batch: its fingerprint with no caller named, which a key
    stored that way matches (`Job.same_request`); worked out only when the stored one
    is not its own."""
    future: asyncio.Future[Answer] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @classmethod
    def of(
        cls,
        jobs: Sequence[Job],
        answer_all: AnswerAll,
        key: str | None = None,
        fingerprint: str = "",
        *,
        user_ids: Sequence[int] = (),
        order_ids: Sequence[int] = (),
        caller: str | None = None,
        unnamed: Callable[[], str] | None = None,
    ) -> Request:
        users = tuple(sorted({*user_ids, *(u for job in jobs for u in job.command.user_ids)}))
        orders = tuple(sorted({*order_ids, *(o for job in jobs for o in job.command.order_ids)}))
        keys = tuple(job.key for job in jobs if job.key is not None)
        keys = (key, *keys) if key is not None else keys
        return cls(jobs, answer_all, key, fingerprint, users, orders, keys, caller, unnamed)

    def same_request(self, record: IdempotencyRecord) -> bool:
        """Whether the answer stored under its key is its own (as `Job.same_request`)."""
        if record.fingerprint == self.fingerprint:
            return True
        return self.unnamed is not None and record.fingerprint == self.unnamed()

    @property
    def resources(self) -> tuple[Resource, ...]:
        """The rows it locks, as the batcher names them."""
        return (*(("user", u) for u in self.user_ids), *(("order", o) for o in self.order_ids))

    @property
    def size(self) -> int:
        return len(self.jobs) or 1

    @property
    def replayable(self) -> bool:
        """Whether a key holds its whole answer, so that running it again is safe when
        a commit's outcome is unknown."""
        return self.key is not None or (len(self.jobs) == 1 and self.jobs[0].key is not None)


def single(job: Job, caller: str | None = None) -> Request:
    """One movement: its answer, or its refusal raised."""
    command = job.command
    users, orders = command.user_ids, command.order_ids
    if len(users) > 1:
        users = tuple(sorted(set(users)))
    keys = (job.key,) if job.key is not None else ()
    return Request((job,), _one, None, "", users, orders, keys, caller)


def _one(outcomes: Sequence[Outcome]) -> StoredResponse:
    (outcome,) = outcomes
    if outcome.refusal is not None:
        raise outcome.refusal
    assert outcome.response is not None
    return outcome.response


def client_batch(
    jobs: Sequence[Job],
    render: Callable[[Sequence[Outcome]], StoredResponse],
    *,
    atomic: bool,
    key: str | None,
    caller: str | None = None,
) -> Request:
    """A client's batch: every operation's outcome in one answer; atomic, the first
    refusal instead, and nothing written. Under a key, its fingerprint is its flag and
    every operation's values and key, and its caller's name."""

    def answer_all(outcomes: Sequence[Outcome]) -> StoredResponse:
        if atomic:
            for index, outcome in enumerate(outcomes):
                if outcome.refusal is not None:
                    raise OperationRefused(index, outcome.refusal)
        return render(outcomes)

    if key is None:
        return Request.of(jobs, answer_all, caller=caller)
    operations = [(job.command, job.key) for job in jobs]
    fingerprint = batch_fingerprint(atomic, operations, caller)
    unnamed = partial(batch_fingerprint, atomic, operations) if caller is not None else None
    return Request.of(jobs, answer_all, key, fingerprint, caller=caller, unnamed=unnamed)


def look_at(user_id: int, order_id: int) -> Request:
    """No command: the batch locks the reservation and its owner, and so expires it if
    its hold ran out (application/apply.py: `expire_due`)."""
    return Request.of((), _nothing, user_ids=(user_id,), order_ids=(order_id,))


NOTHING = StoredResponse(204, b"")


def _nothing(_: Sequence[Outcome]) -> StoredResponse:
    return NOTHING
