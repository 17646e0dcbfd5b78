"""Applying a batch: the locked rows and the requests in, every answer and one write
set out. Pure: no I/O, no clock but the batch's stamp, so it can be read and tested
alone.

First the explicit expiry step: every locked reservation whose hold ran out, when
the batch also holds its owner, gives its money back, so a request that touches it
after `expires_at` finds it expired. Then each request in arrival order, on a layer
of its own over what the requests before it kept: its jobs run through their use
cases, and the request keeps what they did only if its answer is not a refusal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from application.errors import ApplicationError, IdempotencyKeyReused
from application.expire import expire_if_due
from application.locked import BatchState, Layer, Movement
from application.ports import Changes, IdempotencyRecord, Locked
from application.work import Answer, Job, Outcome, Request
from domain.errors import DomainError


@dataclass(frozen=True, slots=True)
class Applied:
    answers: Mapping[Request, Answer | Exception]
    changes: Changes
    expired: int


def apply(locked: Locked, requests: Sequence[Request]) -> Applied:
    users = {user for request in requests for user in request.user_ids}
    orders = sorted({order for request in requests for order in request.order_ids})
    state = BatchState(locked, users, orders)
    expired = expire_due(state, orders)
    answers = {request: apply_request(state, request) for request in requests}
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


def apply_request(state: BatchState, request: Request) -> Answer | Exception:
    """The request's answer, or what refused it whole (then it keeps nothing)."""
    if request.key is not None and (record := state.answer(request.key)) is not None:
        return Answer(record.response) if request.same_request(record) else IdempotencyKeyReused()
    # A request of one job needs no layer of its own: its job's is kept or not alone.
    layer = Layer(state) if len(request.jobs) > 1 else state
    outcomes = [apply_job(layer, job, request.key, request.caller) for job in request.jobs]
    try:
        response = request.answer_all(outcomes)
    except (DomainError, ApplicationError) as refusal:
        return _kept(refusal)
    if layer is not state:
        layer.merge()
    if request.key is not None:
        state.answers[request.key] = IdempotencyRecord(request.fingerprint, response)
    return Answer(response, outcomes)


def apply_job(
    layer: Layer, job: Job, request_key: str | None = None, caller: str | None = None
) -> Outcome:
    if job.key is not None and (record := layer.answer(job.key)) is not None:
        if job.same_request(record):
            return Outcome(record.response, replayed=True)
        return Outcome(refusal=IdempotencyKeyReused())
    movement = Movement(layer, job.key or request_key, caller)
    try:
        result = job.use_case(job.command, movement)
    except DomainError as refusal:
        return Outcome(refusal=_kept(refusal))
    response = job.render(result)
    if job.key is not None:
        movement.answered(job.key, IdempotencyRecord(job.fingerprint, response))
    movement.merge()
    return Outcome(response, result=result)


E = TypeVar("E", bound=Exception)


def _kept(refusal: E) -> E:
    """A refusal kept as an answer, without the traceback that raised it: its frames
    hold the batch's layers, and the layers will hold the answer (a cycle that keeps
    the whole batch alive until the collector walks it)."""
    return refusal.with_traceback(None)
