"""Applying a batch: the locked rows and the requests in, every answer and one write
set out. Pure: no I/O, no clock but the batch's stamp, so it can be read and tested
alone.

First the explicit expiry step: every locked reservation whose hold ran out, when
the batch also holds its owner, gives its money back, so a request that touches it
after `expires_at` finds it expired. Then each request in arrival order, on a layer
of its own over what the requests before it kept: its jobs run through their use
cases, and the request keeps what they did only if its answer is not a refusal.

Every key a request names is answered in its batch, refused or not: the first
answer committed under a key is its answer. A run of the same key still in flight
elsewhere (a batch that failed before its commit, run again inside another worker
after its client, cut off, sent the key here) then finds the key taken when it
writes, runs again, and replays that answer: it cannot apply what its client was
told was refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from application.errors import (
    ApplicationError,
    IdempotencyKeyReused,
    OperationRefused,
    RefusedBefore,
    RefusedWithBatch,
)
from application.expire import expire_if_due
from application.locked import BatchState, Layer, Movement
from application.ports import Changes, IdempotencyRecord, Locked, StoredResponse
from application.work import Answer, Job, Outcome, RenderRefusal, Request, unrendered
from domain.errors import DomainError


@dataclass(frozen=True, slots=True)
class Applied:
    answers: Mapping[Request, Answer | Exception]
    changes: Changes
    expired: int


def apply(
    locked: Locked, requests: Sequence[Request], refused: RenderRefusal = unrendered
) -> Applied:
    """`refused`: a refusal as its client is sent it, stored under its key."""
    users = {user for request in requests for user in request.user_ids}
    orders = sorted({order for request in requests for order in request.order_ids})
    state = BatchState(locked, users, orders)
    expired = expire_due(state, orders)
    answers = {request: apply_request(state, request, refused) for request in requests}
    return Applied(answers, state.changes(), expired)


def expire_due(state: BatchState, order_ids: Sequence[int]) -> int:
    """The locked reservations whose hold ran out give their money back."""
    expired = 0
    for order_id in order_ids:
        # Most orders a batch names are new or not due: no unit of work to look at them.
        found = state.reservation(order_id)
        if found is None or not found.is_due(state.now):
            continue
        movement = Movement(state)
        if expire_if_due(order_id, movement):
            movement.merge()
            expired += 1
    return expired


def apply_request(
    state: BatchState, request: Request, refused: RenderRefusal
) -> Answer | Exception:
    """The request's answer, or what refused it whole (then it keeps nothing but the
    answers under its keys)."""
    if request.key is not None and (record := state.answer(request.key)) is not None:
        if not request.same_request(record):
            return IdempotencyKeyReused()
        return _refused_before(record.response) or Answer(_again(record.response))
    # A request of one job needs no layer of its own: its job's is kept or not alone.
    layer = Layer(state) if len(request.jobs) > 1 else state
    outcomes = [apply_job(layer, job, request.key, request.caller, refused) for job in request.jobs]
    try:
        response = request.answer_all(outcomes)
    except (DomainError, ApplicationError) as refusal:
        if request.keys:
            _answer_refused(state, request, outcomes, refusal, refused)
        return _kept(refusal)
    if layer is not state:
        layer.merge()
    if request.key is not None:
        state.answers[request.key] = IdempotencyRecord(request.fingerprint, response)
    return Answer(response, outcomes)


def _answer_refused(
    state: BatchState,
    request: Request,
    outcomes: Sequence[Outcome],
    refusal: Exception,
    refused: RenderRefusal,
) -> None:
    """A request refused whole answers every key it names that had no answer: its own
    with the refusal; an atomic batch's operations' with their own refusal, or, undone
    with the batch, with `RefusedWithBatch`. (A single job's key was answered as it
    was refused: `apply_job`.)"""
    if request.key is not None:
        state.answers[request.key] = IdempotencyRecord(request.fingerprint, refused(refusal))
    if not isinstance(refusal, OperationRefused):
        return
    for job, outcome in zip(request.jobs, outcomes, strict=True):
        key = job.key
        if key is None or outcome.replayed or key in state.answers:
            continue  # (in state already: a batch of one job, answered in apply_job)
        if isinstance(outcome.refusal, IdempotencyKeyReused):
            continue  # the key is another request's
        own = outcome.refusal or RefusedWithBatch(refusal.index)
        state.answers[key] = IdempotencyRecord(job.fingerprint, refused(own))


def apply_job(
    layer: Layer, job: Job, request_key: str | None, caller: str | None, refused: RenderRefusal
) -> Outcome:
    if job.key is not None and (record := layer.answer(job.key)) is not None:
        if not job.same_request(record):
            return Outcome(refusal=IdempotencyKeyReused())
        response = record.response
        return Outcome(_again(response), refusal=_refused_before(response), replayed=True)
    movement = Movement(layer, job.key or request_key, caller)
    try:
        result = job.use_case(job.command, movement)
    except DomainError as refusal:
        if job.key is not None:  # answered so, and nothing else of it kept
            layer.answers[job.key] = IdempotencyRecord(job.fingerprint, refused(refusal))
        return Outcome(refusal=_kept(refusal))
    response = job.render(result)
    if job.key is not None:
        movement.answered(job.key, IdempotencyRecord(job.fingerprint, response))
    movement.merge()
    return Outcome(response, result=result)


def _again(response: StoredResponse) -> StoredResponse:
    """A stored answer, sent again (its client is told: `Idempotent-Replayed`)."""
    return replace(response, replayed=True)


def _refused_before(response: StoredResponse) -> RefusedBefore | None:
    """A stored refusal, replayed as one; None for a stored success."""
    return RefusedBefore(response) if response.status >= 400 else None


E = TypeVar("E", bound=Exception)


def _kept(refusal: E) -> E:
    """A refusal kept as an answer, without the traceback that raised it: its frames
    hold the batch's layers, and the layers will hold the answer (a cycle that keeps
    the whole batch alive until the collector walks it)."""
    return refusal.with_traceback(None)
