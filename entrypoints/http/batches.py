"""`POST /v1/batches`: many money movements in one request and one database
transaction, each answered as its single endpoint would have answered it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from litestar import post
from litestar.params import JSONBody
from litestar.types import Scope

from application.ports import StoredResponse
from application.work import Job, Outcome, client_batch
from domain.errors import InvalidAmount, InvalidMovement
from entrypoints.http import metrics
from entrypoints.http.answer import JsonAnswer
from entrypoints.http.auth import WRITE, caller_of
from entrypoints.http.controllers import KEYED, IdempotencyKey, ServicesDep, openapi_responses
from entrypoints.http.decoding import StrictJSON, invalid_field
from entrypoints.http.money import (
    CANCELLATION,
    DEPOSIT,
    MOVEMENT,
    RECOGNITION,
    RESERVATION,
    TRANSFER,
    WITHDRAWAL,
    MoneyRoute,
    idempotency_key,
)
from entrypoints.http.problems import refusal
from entrypoints.http.render import encode
from entrypoints.http.schemas import (
    BatchRequest,
    BatchResponse,
    CancelOperation,
    DepositOperation,
    MovementOperation,
    Operation,
    RecognizeOperation,
    ReserveOperation,
    TransferOperation,
    WithdrawalOperation,
)

MAX_BATCH_BODY = 1024 * 1024
ROUTES: dict[type[Operation], MoneyRoute[Any]] = {
    DepositOperation: DEPOSIT,
    WithdrawalOperation: WITHDRAWAL,
    TransferOperation: TRANSFER,
    ReserveOperation: RESERVATION,
    RecognizeOperation: RECOGNITION,
    CancelOperation: CANCELLATION,
    MovementOperation: MOVEMENT,
}


def _job(index: int, operation: Operation, caller: str | None) -> Job:
    """The operation as its single endpoint would run it, for the caller who sent it; a
    malformed amount is the whole batch's refusal, named by its place."""
    order_id = getattr(operation, "order_id", 0)
    try:
        use_case, command, render = ROUTES[type(operation)].plan(operation, order_id)
    except (InvalidAmount, InvalidMovement) as error:
        field = f"operations[{index}].{error.field}"
        amount = isinstance(error, InvalidAmount)
        raise invalid_field(field, error.reason, bad_amount=amount) from None
    return Job.of(use_case, command, render, operation.idempotency_key or None, caller)


def _results(outcomes: Sequence[Outcome]) -> StoredResponse:
    """Every operation's answer, as its single endpoint would have sent it."""
    results = []
    for outcome in outcomes:
        if outcome.refusal is not None:
            refused = refusal(outcome.refusal)
            results.append({"status": refused.status, "body": msgspec.Raw(refused.body)})
        else:
            assert outcome.response is not None
            stored = outcome.response
            results.append({"status": stored.status, "body": msgspec.Raw(stored.body)})
    return StoredResponse(200, encode({"results": results}))


@post(
    "/v1/batches",
    dto=StrictJSON[BatchRequest],
    return_dto=None,
    status_code=200,
    request_max_body_size=MAX_BATCH_BODY,
    responses=openapi_responses(200, BatchResponse, "Every operation's answer, in order", 404, 409),
    operation_id="createBatch",
    summary="Apply many money movements in one request",
    tags=["money"],
    opt={**WRITE, KEYED: True},
)
async def post_batch(
    data: JSONBody[BatchRequest],
    services: ServicesDep,
    scope: Scope,
    idempotency_key_: IdempotencyKey = None,
) -> JsonAnswer:
    """Up to 1,000 deposits, withdrawals, transfers, reserves, recognitions and cancels,
    applied in array order in one database transaction. Not atomic (the default): each
    operation stands alone and gets the status and body its single endpoint would
    have answered at that point. Atomic: all or nothing; the first refusal is the
    answer, its field named `operations[i]...`, and nothing is written."""
    key, caller = idempotency_key(idempotency_key_), caller_of(scope)
    jobs = [_job(i, operation, caller) for i, operation in enumerate(data.operations)]
    for index, job in enumerate(jobs):
        if key is not None and job.key == key:
            raise invalid_field(
                f"operations[{index}].idempotency_key", "is the batch's own Idempotency-Key"
            )
    request = client_batch(jobs, _results, atomic=data.atomic, key=key, caller=caller)
    answer = await services.movements.submit(request)
    for outcome in answer.outcomes:  # none when the batch's key replayed its answer
        if outcome.refusal is not None and not outcome.replayed:  # a replay is counted so
            metrics.refused(refusal(outcome.refusal).slug)
    return JsonAnswer.of(answer.response)


BATCH_ROUTES = [post_batch]
