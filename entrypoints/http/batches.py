"""`POST /v1/batches`: many money movements in one request and one database
transaction, each answered as its single endpoint would have answered it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import msgspec
from litestar import Response, post
from litestar.params import JSONBody

from application.ports import StoredResponse
from application.runner import ClientBatch, Job, MoneyMovements, Outcome
from domain.errors import InvalidAmount
from entrypoints.http import metrics
from entrypoints.http.auth import WRITE
from entrypoints.http.controllers import IdempotencyKey, ServicesDep, openapi_responses
from entrypoints.http.decoding import StrictJSON, invalid_field
from entrypoints.http.money import (
    CANCELLATION,
    DEPOSIT,
    RECOGNITION,
    RESERVATION,
    TRANSFER,
    WITHDRAWAL,
    MoneyRoute,
    idempotency_key,
)
from entrypoints.http.problems import refusal
from entrypoints.http.schemas import (
    BatchRequest,
    BatchResponse,
    CancelOperation,
    DepositOperation,
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
}
_encode = msgspec.json.Encoder().encode


def _job(movements: MoneyMovements, index: int, operation: Operation) -> Job:
    """The operation as its single endpoint would run it; a malformed amount is the
    whole batch's refusal, named by its place."""
    order_id = getattr(operation, "order_id", 0)
    try:
        use_case, command, render = ROUTES[type(operation)].plan(operation, order_id)
    except InvalidAmount as error:
        raise invalid_field(f"operations[{index}].amount", error.reason) from None
    return movements.job(use_case, command, render, operation.idempotency_key or None)


class _Results:
    """Renders every operation's answer. The engine renders a batch once per
    attempt, before its commit: the refusals of the last rendering are counted by
    the handler once the batch is through, so a retried batch counts them once."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    def __call__(self, outcomes: list[Outcome]) -> StoredResponse:
        self.refused = []
        results = []
        for outcome in outcomes:
            if outcome.refusal is not None:
                refused = refusal(outcome.refusal)
                self.refused.append(refused.slug)
                results.append({"status": refused.status, "body": msgspec.Raw(refused.body)})
            else:
                assert outcome.response is not None
                stored = outcome.response
                results.append({"status": stored.status, "body": msgspec.Raw(stored.body)})
        return StoredResponse(200, _encode({"results": results}))


def _fingerprint(data: BatchRequest, jobs: list[Job]) -> str:
    form = ["batch", 1, data.atomic, [[*job.command.canonical(), job.key] for job in jobs]]
    return hashlib.sha256(json.dumps(form, separators=(",", ":")).encode()).hexdigest()


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
    opt=WRITE,
)
async def post_batch(
    data: JSONBody[BatchRequest], services: ServicesDep, idempotency_key_: IdempotencyKey = None
) -> Response[bytes]:
    """Up to 1,000 deposits, withdrawals, transfers, reserves, recognitions and cancels,
    applied in array order in one database transaction. Not atomic (the default): each
    operation stands alone and gets the status and body its single endpoint would
    have answered at that point. Atomic: all or nothing; the first refusal is the
    answer, its field named `operations[i]...`, and nothing is written."""
    key = idempotency_key(idempotency_key_)
    movements = services.movements
    jobs = [_job(movements, i, operation) for i, operation in enumerate(data.operations)]
    for index, job in enumerate(jobs):
        if key is not None and job.key == key:
            raise invalid_field(
                f"operations[{index}].idempotency_key", "is the batch's own Idempotency-Key"
            )
    results = _Results()
    batch = ClientBatch(jobs, data.atomic, results, key, _fingerprint(data, jobs))
    stored = await movements.execute_batch(batch)
    for slug in results.refused:  # none when the batch's key replayed its answer
        metrics.refused(slug)
    return Response(stored.body, status_code=stored.status, media_type="application/json")


BATCH_ROUTES = [post_batch]
