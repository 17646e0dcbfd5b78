"""Every refusal as RFC 9457 problem+json, mapped in one table, never a stack trace."""

from __future__ import annotations

import functools
import logging
import re
from typing import Any, NamedTuple

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, InternalServerException

from application.errors import (
    ApplicationError,
    ConcurrentUpdate,
    IdempotencyKeyReused,
    InvalidParameter,
    OperationRefused,
    RefusedBefore,
    RefusedWithBatch,
    RequestInProgress,
    StoreUnavailable,
)
from application.ports import StoredResponse
from domain import errors as rules
from domain.money import AMOUNT_RULE, LEG_AMOUNT_RULE
from entrypoints.http import metrics
from entrypoints.http.decoding import (
    BODY_REQUIRED,
    CLIENT_GONE,
    RequestInvalid,
    parameter_sentence,
)
from entrypoints.http.schemas import Problem, ProblemField

logger = logging.getLogger("balance.http")

PROBLEM_JSON = "application/problem+json"

# rule -> (status, problem slug, the field it is about)
REFUSALS: dict[type[Exception], tuple[int, str, str | None]] = {
    rules.UserNotFound: (404, "user-not-found", "user_id"),
    rules.ReservationNotFound: (404, "reservation-not-found", "order_id"),
    rules.InsufficientFunds: (409, "insufficient-funds", "amount"),
    rules.AccountFrozen: (409, "account-frozen", "user_id"),
    rules.BalanceLimit: (409, "balance-limit", "amount"),
    rules.InvalidLimit: (422, "invalid-limit", "credit_limit"),
    rules.InvalidMovement: (422, "invalid-movement", "legs"),
    rules.OrderAlreadyUsed: (409, "order-already-used", "order_id"),
    rules.ReservationMismatch: (409, "reservation-mismatch", None),
    rules.ReservationAlreadyClosed: (409, "reservation-already-closed", "order_id"),
    rules.ReservationExpired: (409, "reservation-expired", "order_id"),
    rules.InvalidExpiry: (422, "invalid-expiry", "expires_at"),
    rules.RecognitionExceedsReservation: (409, "recognition-exceeds-reservation", "amount"),
    rules.SameUserTransfer: (422, "same-user-transfer", "to_user_id"),
    rules.InvalidAmount: (422, "invalid-amount", "amount"),
    IdempotencyKeyReused: (422, "idempotency-key-reused", "Idempotency-Key"),
    RefusedWithBatch: (409, "refused-with-batch", "Idempotency-Key"),
    RequestInProgress: (409, "request-in-progress", "Idempotency-Key"),
    StoreUnavailable: (503, "unavailable", None),
    InvalidParameter: (422, "invalid-parameter", None),
    ConcurrentUpdate: (503, "unavailable", None),
}

_encoder = msgspec.json.Encoder()


class Answer(NamedTuple):
    """A refusal ready for the wire, and its problem type for the metrics."""

    status: int
    body: bytes
    headers: dict[str, str] | None
    slug: str
    replayed: bool = False
    """Sent again under its key: a replay (its header says so), not a refusal made now."""


def answer(
    status: int,
    slug: str,
    detail: str,
    errors: list[ProblemField] | None = None,
    headers: dict[str, str] | None = None,
    *,
    numbers: rules.InsufficientFunds | None = None,
) -> Answer:
    body = Problem(
        type=f"/problems/{slug}",
        title=slug.replace("-", " ").capitalize(),
        status=status,
        detail=detail,
        errors=errors or [],
        available=numbers.available if numbers else None,
        credit_limit=numbers.credit_limit if numbers else None,
        requested=numbers.requested if numbers else None,
    )
    return Answer(status, _encoder.encode(body), headers, slug)


def problem(
    status: int,
    slug: str,
    detail: str,
    errors: list[ProblemField] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    return _response(answer(status, slug, detail, errors, headers))


def _response(refusal: Answer) -> Response[bytes]:
    """Every refusal a request is answered with is counted here, once, as it is sent
    (a client batch, which renders its refusals at each attempt, counts its own); a
    refusal stored under a key and sent again is a replay, counted as one by the
    runner, not again as a refusal: retries of a refused key do not raise the rate."""
    headers: dict[str, str] | None = REPLAYED
    if not refusal.replayed:
        metrics.refused(refusal.slug)
        headers = refusal.headers
    return Response(
        refusal.body, status_code=refusal.status, media_type=PROBLEM_JSON, headers=headers
    )


def refusal(error: Exception) -> Answer:
    """A broken rule (domain or application) as its problem; one inside a batch's
    operation or a movement's leg names its place (`operations[2].legs[0].amount`)."""
    place, rule = _place(error)
    if isinstance(rule, RefusedBefore):
        return _replayed(place, rule.response)
    status, slug, field = REFUSALS[_rule_of(rule)]
    field = getattr(rule, "field", field)
    named = ".".join(part for part in (place, field) if part)
    if isinstance(rule, rules.InvalidAmount):
        return bad_amounts([named])
    errors = [ProblemField(named, str(rule))] if named else []
    headers = {"Retry-After": "1"} if status == 503 else None
    numbers = rule if isinstance(rule, rules.InsufficientFunds) else None
    return answer(status, slug, str(error), errors, headers, numbers=numbers)


def stored_refusal(error: Exception) -> StoredResponse:
    """A refusal as it is stored under its Idempotency-Key: what its client is sent."""
    refused = refusal(error)
    return StoredResponse(refused.status, refused.body)


_stored_problem = msgspec.json.Decoder(Problem)


REPLAYED = {"Idempotent-Replayed": "true"}


def _replayed(place: str, stored: StoredResponse) -> Answer:
    """A refusal stored under a key, sent again as it was sent, and saying so; inside
    an atomic batch (answered now), with its place named as a fresh one's is."""
    try:
        problem = _stored_problem.decode(stored.body)
    except msgspec.DecodeError:  # not stored by the service (a runner with no HTTP)
        return Answer(stored.status, stored.body, None, "stored-refusal", replayed=not place)
    slug = problem.type.rsplit("/", 1)[-1]
    if not place:
        return Answer(stored.status, stored.body, None, slug, replayed=True)
    errors = [ProblemField(f"{place}.{e.field}", e.message) for e in problem.errors]
    placed_errors = errors or [ProblemField(place, problem.detail)]
    placed = msgspec.structs.replace(
        problem, detail=f"{place}: {problem.detail}", errors=placed_errors
    )
    return Answer(stored.status, _encoder.encode(placed), None, slug)


def bad_amounts(fields: list[str]) -> Answer:
    """Every amount written wrong, as a number or as a string, in one shape: 422
    invalid-amount, saying what an amount may be."""
    errors = [ProblemField(f, LEG_AMOUNT_RULE if "legs[" in f else AMOUNT_RULE) for f in fields]
    detail = "; ".join(f"{e.field} {e.message}" for e in errors)
    return answer(422, "invalid-amount", detail, errors)


def _place(error: Exception) -> tuple[str, Exception]:
    """Where in the request the rule broke, and the rule."""
    if isinstance(error, OperationRefused | rules.LegRefused):
        name = "operations" if isinstance(error, OperationRefused) else "legs"
        inner, rule = _place(error.refusal)
        return ".".join(p for p in (f"{name}[{error.index}]", inner) if p), rule
    return "", error


def refused(_: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    return _response(refusal(error))


def invalid_request(_: Request[Any, Any, Any], error: RequestInvalid) -> Response[bytes]:
    if error.status == 422 and error.errors and all(e.bad_amount for e in error.errors):
        return _response(bad_amounts([e.field for e in error.errors]))
    slug = {400: "malformed-request", 415: "unsupported-media-type"}.get(
        error.status, "validation-failed"
    )
    errors = [ProblemField(e.field, e.message) for e in error.errors]
    return problem(error.status, slug, error.detail, errors)


BODY_TOO_LARGE = "the body is larger than 64 KiB (1 MiB for /v1/batches)"
_MISSING = re.compile(r"Missing required (query|header|path|cookie) parameter '([^']+)'")


CLIENT_CLOSED_REQUEST = 499
"""nginx's status for a client that went away before its whole body came (CLIENT_GONE):
not the service's failure, so not a 500 in the access log or the 5xx rate (the alert);
no one reads the answer."""


def client_gone(request: Request[Any, Any, Any], error: InternalServerException) -> Response[bytes]:
    if error.detail != CLIENT_GONE:
        return http_error(request, error)
    gone = "the client closed the connection before the whole body came; nothing was done"
    return problem(
        CLIENT_CLOSED_REQUEST, "client-closed-request", gone, [ProblemField("body", gone)]
    )


def http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[bytes]:
    slug = {
        401: "unauthorized",
        403: "forbidden",
        404: "not-found",
        405: "method-not-allowed",
        408: "request-timeout",
        413: "body-too-large",
    }.get(error.status_code, "http-error")
    if error.status_code == 400 and isinstance(error.extra, list):
        if any(isinstance(e, dict) and e.get("key") == "data" for e in error.extra):
            body = [ProblemField("body", BODY_REQUIRED)]
            return problem(400, "malformed-request", BODY_REQUIRED, body)
        fields = [
            ProblemField(str(e.get("key", "")), parameter_sentence(str(e.get("message", ""))))
            for e in error.extra
            if isinstance(e, dict)
        ]
        # Litestar's detail repeats the URL; the fields say what is wrong.
        said = "; ".join(f"{f.field}: {f.message}" for f in fields) or error.detail
        return problem(422, "validation-failed", said, fields)
    if error.status_code == 400 and (missing := _MISSING.match(error.detail or "")):
        name = missing.group(2)
        detail = f"the {missing.group(1)} parameter {name} is required"
        return problem(422, "validation-failed", detail, [ProblemField(name, detail)])
    if error.status_code == 404 and (wrong := _wrong_path_parameter(request)) is not None:
        detail = f"the path parameter {wrong} must be a whole number"
        return problem(422, "validation-failed", detail, [ProblemField(wrong, detail)])
    if error.status_code == 413:
        too_big = [ProblemField("body", BODY_TOO_LARGE)]
        return problem(413, slug, BODY_TOO_LARGE, too_big, error.headers)
    detail, field = error.detail, _FIELDS.get(error.status_code)
    path = _shown(request.url.path)
    if error.status_code == 404:  # no route: the router's own words are "Not Found"
        detail = f"no route {path}; the API's routes are in /docs"
    elif error.status_code == 405:
        allow = (error.headers or {}).get("allow", "").split(",")
        takes = ", ".join(sorted({m.strip() for m in allow} - {"", "OPTIONS"}))
        detail = f"{_shown(request.method)} is not a method of {path}, which takes {takes}"
    named = [ProblemField(field, detail)] if field else None
    return problem(error.status_code, slug, detail, named, error.headers)


def _shown(text: str) -> str:
    """A client's path or method in a message, cut short if long."""
    return text if len(text) <= 200 else text[:200] + "..."


# What an HTTP error is about, named as a refusal names its field.
_FIELDS = {401: "Authorization", 403: "Authorization", 404: "path", 405: "method", 408: "body"}
_PATH_PARAMETER = re.compile(r"\{(\w+):(\w+)\}")
_WHOLE_NUMBER = re.compile(r"-?[0-9]+")


def _wrong_path_parameter(request: Request[Any, Any, Any]) -> str | None:
    """A path that is a route's but for a number written as something else
    (`/v1/users/abc/balance`): the parameter's name. The router only says 404."""
    path = request.scope["path"]
    for route in request.app.routes:
        if ":int}" not in route.path or request.method not in getattr(route, "methods", ()):
            continue
        pattern, params = _any_segment(route.path)
        matched = pattern.fullmatch(path)
        if matched is None:
            continue
        for (name, kind), value in zip(params, matched.groups(), strict=True):
            if kind == "int" and not _WHOLE_NUMBER.fullmatch(value):
                return name
    return None


@functools.cache
def _any_segment(template: str) -> tuple[re.Pattern[str], tuple[tuple[str, str], ...]]:
    """A route template as a pattern taking any text for each parameter, and the
    parameters' (name, type); made once per template."""
    pattern, end, params = "", 0, []
    for found in _PATH_PARAMETER.finditer(template):
        pattern += re.escape(template[end : found.start()]) + "([^/]+)"
        params.append((found.group(1), found.group(2)))
        end = found.end()
    return re.compile(pattern + re.escape(template[end:])), tuple(params)


def failure(method: str, path: str, error: Exception) -> Answer:
    """An error no rule explains: logged with its trace, answered without it."""
    logger.error("unhandled error on %s %s", method, path, exc_info=error)
    return answer(
        500,
        "internal-error",
        "the service failed; if this moved money, retry with the same Idempotency-Key",
    )


def unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    return _response(failure(request.method, request.url.path, error))


def _rule_of(error: Exception) -> type[Exception]:
    return next(t for t in type(error).__mro__ if t in REFUSALS)


EXCEPTION_HANDLERS = {
    rules.DomainError: refused,
    ApplicationError: refused,
    RequestInvalid: invalid_request,
    InternalServerException: client_gone,
    HTTPException: http_error,
    Exception: unexpected,
}
