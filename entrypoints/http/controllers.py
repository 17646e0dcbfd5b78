"""Thin handlers: struct in -> command -> use case -> bytes out."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, HttpMethod, Request, Response, get, post, put, route
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.types import ControllerRouterHandler, Scope

from adapters.event_message import event_out
from application.events import MAX_EVENTS_PAGE, events_after
from application.get_balance import get_balance
from application.limits import SetLimits, get_limits, set_limits
from application.ports import DatabaseStatus, RevenueReports, RevenueReportWriter, UnitOfWork
from application.reservations import get_reservation
from application.runner import MoneyMovements
from application.statement import build_query, statement
from application.statement_query import MAX_LIMIT, StatementSort
from domain.errors import InvalidAmount, InvalidLimit
from domain.ledger import EntryKind, Metadata
from domain.money import Money
from entrypoints.http import render
from entrypoints.http.answer import JsonAnswer
from entrypoints.http.auth import ADMIN, READ, WRITE, caller_of
from entrypoints.http.decoding import StrictJSON, invalid_field, unknown_parameter
from entrypoints.http.money import (
    CANCELLATION,
    DEPOSIT,
    MAX_KEY_LENGTH,
    MOVEMENT,
    RECOGNITION,
    RESERVATION,
    TRANSFER,
    WITHDRAWAL,
    MoneyRoute,
    S,
    request_headers,
)
from entrypoints.http.schemas import (
    MAX_ID,
    MAX_METADATA_KEY,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE,
    METADATA_KEY,
    NO_CONTROL,
    BalanceResponse,
    CancelRequest,
    DepositRequest,
    EventsPage,
    LimitsRequest,
    LimitsResponse,
    MovementRequest,
    MovementResponse,
    MoveResponse,
    Problem,
    RecognizeRequest,
    ReservationRequest,
    ReservationResponse,
    StatementResponse,
    TransferRequest,
    TransferResponse,
    WithdrawalRequest,
)


@dataclass(frozen=True, slots=True)
class Services:
    movements: MoneyMovements
    uow: Callable[[], UnitOfWork]
    reports: Callable[[], RevenueReports]
    report_writer: RevenueReportWriter
    readiness: Callable[[], Awaitable[DatabaseStatus]]


IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]+$"
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        description=(
            "1..255 printable ASCII, one header; the same key and request replay the first"
            " answer, a refusal too, with `Idempotent-Replayed: true`"
        ),
        # Documented only: idempotency_key() checks it, so the refusal names the header.
        schema_extra={
            "minLength": 1,
            "maxLength": MAX_KEY_LENGTH,
            "pattern": IDEMPOTENCY_KEY_PATTERN,
        },
    ),
]
PathId = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
ServicesDep = NamedDependency[Services]


async def _apply(
    route: MoneyRoute[S],
    services: Services,
    data: S,
    order_id: int,
    key: str | None,
    *,
    caller: str | None,
) -> JsonAnswer:
    return await route.apply(services.movements, data, order_id, key, caller)


KEYED = "keyed"
"""A route that takes an Idempotency-Key: one, not two (`money.request_headers`)."""


def answered_first(route: MoneyRoute[Any]) -> dict[str, Any]:
    """A write route (WRITE) that `money_first` answers before Litestar extracts the
    handler's arguments: the handler's signature documents it (OpenAPI), and is what
    Litestar reads when the app is built without it. Every money route but the
    client's batch (one request for up to 1,000 movements) is one."""
    return {**WRITE, "money": route, KEYED: True}


QUERY_PREFIX = "query_prefix"
"""A route's opt: the prefix of the query parameters it reads by name itself (a
statement's `metadata.<key>` filters)."""


def before_request(
    services: Callable[[], Services],
    query_names: Mapping[int, Mapping[str, bool]],
    *,
    money_first: bool = True,
) -> Callable[[Request[Any, Any, Any]], Any]:
    """The app's before-request hook. A query parameter the route does not take, or
    one it takes once given twice, is refused, 422 naming it, as a body's unknown or
    repeated field is: `?sortt=amount` would otherwise list by date without a word,
    and `?sort=amount&sort=date` by whichever Litestar kept. `query_names`: each /v1
    route's query parameters (whether each may repeat), by its handler's id
    (`app.api_query_names`); a handler not in it (the health probes, metrics, the
    docs, Litestar's OPTIONS) is not checked. A route that takes an Idempotency-Key
    refuses two of them, 422 naming it. Then, with `money_first`, a money route marked
    `answered_first` is answered here, by its MoneyRoute (Litestar sends a hook's
    answer and skips the handler); any other route, None: Litestar goes on as usual."""

    async def hook(request: Request[Any, Any, Any]) -> JsonAnswer | None:
        handler = request.route_handler
        if request.scope["query_string"]:
            _check_query(request, query_names.get(id(handler)), handler.opt.get(QUERY_PREFIX))
        route: MoneyRoute[Any] | None = handler.opt.get("money") if money_first else None
        if route is None:
            if handler.opt.get(KEYED):  # read as a money route reads them, so checked alike
                request_headers(request.scope["headers"])
            return None
        return await route.answer(request, services().movements)

    return hook


def _check_query(
    request: Request[Any, Any, Any], known: Mapping[str, bool] | None, prefix: str | None
) -> None:
    if known is None:
        return
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name in known:
            if name in seen and not known[name]:
                raise invalid_field(name, "is given more than once")
        elif not (prefix and name.startswith(prefix)):
            shown = name if len(name) <= 100 else name[:100] + "..."
            raise unknown_parameter(
                shown, [*sorted(known), *([f"{prefix}<key>"] if prefix else [])]
            )
        seen.add(name)


def openapi_responses(
    success: int,
    body: type,
    description: str,
    *refusals: int,
    media_type: str = "application/json",
    also: tuple[int, str] | None = None,
) -> dict[int, ResponseSpec]:
    """The documented answers: success (and `also`, a second success of the same body)."""
    docs = {
        success: ResponseSpec(
            data_container=body,
            description=description,
            media_type=media_type,
            generate_examples=False,
        )
    }
    if also is not None:
        docs[also[0]] = ResponseSpec(
            data_container=body, description=also[1], generate_examples=False
        )
    for status in (400, 422, *refusals):
        docs[status] = ResponseSpec(
            data_container=Problem,
            media_type="application/problem+json",
            description="Refused",
            generate_examples=False,
        )
    return docs


@post(
    DEPOSIT.path,
    dto=StrictJSON[DepositRequest],
    return_dto=None,
    responses=openapi_responses(201, MovementResponse, "Deposited; the balances after it", 409),
    operation_id="createDeposit",
    summary="Deposit money to a user",
    tags=["money"],
    opt=answered_first(DEPOSIT),
)
async def post_deposit(
    data: JSONBody[DepositRequest],
    services: ServicesDep,
    scope: Scope,
    idempotency_key: IdempotencyKey = None,
) -> JsonAnswer:
    """Money paid in from outside to a user; the first deposit opens the user's account."""
    return await _apply(DEPOSIT, services, data, 0, idempotency_key, caller=caller_of(scope))


@post(
    WITHDRAWAL.path,
    dto=StrictJSON[WithdrawalRequest],
    return_dto=None,
    responses=openapi_responses(
        201, MovementResponse, "Withdrawn; the balances after it", 404, 409
    ),
    operation_id="createWithdrawal",
    summary="Withdraw money from a user",
    tags=["money"],
    opt=answered_first(WITHDRAWAL),
)
async def post_withdrawal(
    data: JSONBody[WithdrawalRequest],
    services: ServicesDep,
    scope: Scope,
    idempotency_key: IdempotencyKey = None,
) -> JsonAnswer:
    """Money paid out of a user's available balance."""
    return await _apply(WITHDRAWAL, services, data, 0, idempotency_key, caller=caller_of(scope))


@post(
    TRANSFER.path,
    dto=StrictJSON[TransferRequest],
    return_dto=None,
    responses=openapi_responses(
        201, TransferResponse, "Transferred; both users' balances after it", 404, 409
    ),
    operation_id="createTransfer",
    summary="Transfer money between two users",
    tags=["money"],
    opt=answered_first(TRANSFER),
)
async def post_transfer(
    data: JSONBody[TransferRequest],
    services: ServicesDep,
    scope: Scope,
    idempotency_key: IdempotencyKey = None,
) -> JsonAnswer:
    """Move money between two users' available balances."""
    return await _apply(TRANSFER, services, data, 0, idempotency_key, caller=caller_of(scope))


@post(
    RESERVATION.path,
    dto=StrictJSON[ReservationRequest],
    return_dto=None,
    responses=openapi_responses(
        201,
        ReservationResponse,
        "Reserved",
        404,
        409,
        also=(200, "This order was already reserved with these values: the reservation as is"),
    ),
    operation_id="createReservation",
    summary="Reserve money for an order",
    tags=["reservations"],
    opt=answered_first(RESERVATION),
)
async def post_reservation(
    data: JSONBody[ReservationRequest],
    services: ServicesDep,
    scope: Scope,
    idempotency_key: IdempotencyKey = None,
) -> JsonAnswer:
    """Hold money for an order. The same order again answers 200 with the reservation."""
    return await _apply(RESERVATION, services, data, 0, idempotency_key, caller=caller_of(scope))


@post(
    RECOGNITION.path,
    dto=StrictJSON[RecognizeRequest],
    return_dto=None,
    status_code=200,
    responses=openapi_responses(200, ReservationResponse, "Recognized as revenue", 404, 409),
    operation_id="recognizeReservation",
    summary="Recognize a reservation as revenue",
    tags=["reservations"],
    opt=answered_first(RECOGNITION),
)
async def post_recognize(
    order_id: PathId,
    data: JSONBody[RecognizeRequest],
    services: ServicesDep,
    scope: Scope,
    idempotency_key: IdempotencyKey = None,
) -> JsonAnswer:
    """Recognize held money as revenue; an amount below the reserved one releases the rest."""
    return await _apply(
        RECOGNITION, services, data, order_id, idempotency_key, caller=caller_of(scope)
    )


@post(
    CANCELLATION.path,
    dto=StrictJSON[CancelRequest],
    return_dto=None,
    status_code=200,
    responses=openapi_responses(
        200, ReservationResponse, "Cancelled; the money is available again", 404, 409
    ),
    operation_id="cancelReservation",
    summary="Cancel a reservation",
    tags=["reservations"],
    opt=answered_first(CANCELLATION),
)
async def post_cancel(
    order_id: PathId,
    data: JSONBody[CancelRequest],
    services: ServicesDep,
    scope: Scope,
    idempotency_key: IdempotencyKey = None,
) -> JsonAnswer:
    """Release held money back to the user: the service could not be provided."""
    return await _apply(
        CANCELLATION, services, data, order_id, idempotency_key, caller=caller_of(scope)
    )


@post(
    MOVEMENT.path,
    dto=StrictJSON[MovementRequest],
    return_dto=None,
    responses=openapi_responses(
        201, MoveResponse, "Moved; every leg's balances after it", 404, 409
    ),
    operation_id="createMovement",
    summary="Move money between several users at once",
    tags=["money"],
    opt=answered_first(MOVEMENT),
)
async def post_movement(
    data: JSONBody[MovementRequest],
    services: ServicesDep,
    scope: Scope,
    idempotency_key: IdempotencyKey = None,
) -> JsonAnswer:
    """One ledger transaction of 2..100 legs summing to zero, all or nothing: each
    negative leg is checked like any debit (balance, credit limit, freeze); a positive
    leg to a user with no account opens one."""
    return await _apply(MOVEMENT, services, data, 0, idempotency_key, caller=caller_of(scope))


class Limits(Controller):
    """GET and PUT of one path. Litestar 2's own OPTIONS answer names only one method
    of a path served by several handlers (litestar-org/litestar#4169): this one says
    both."""

    path = "/v1/users/{user_id:int}/limits"

    @route(http_method=[HttpMethod.OPTIONS], include_in_schema=False)
    async def allowed(self) -> Response[None]:
        return Response(None, status_code=204, headers={"Allow": "GET, OPTIONS, PUT"})

    @put(
        dto=StrictJSON[LimitsRequest],
        return_dto=None,
        status_code=200,
        responses=openapi_responses(200, LimitsResponse, "The limits now, and the balances", 404),
        operation_id="setUserLimits",
        summary="Set a user's credit limit and freeze",
        tags=["balances"],
        opt=ADMIN,
    )
    async def put_limits(
        self, user_id: PathId, data: JSONBody[LimitsRequest], services: ServicesDep, scope: Scope
    ) -> JsonAnswer:
        """How far below zero the user's available balance may go, and whether debits
        stop. Taken under the user's lock, as any debit is. A user with no account gets
        one."""
        try:
            limit = Money.from_rubles(data.credit_limit)
        except InvalidAmount as error:
            raise InvalidLimit(error.reason) from None
        command = SetLimits(user_id, limit, data.frozen)
        movements = services.movements
        return JsonAnswer.of(
            await movements.execute(set_limits, command, render.limits, None, caller_of(scope))
        )

    @get(
        responses=openapi_responses(200, LimitsResponse, "", 404),
        operation_id="getUserLimits",
        summary="Get a user's credit limit and freeze",
        tags=["balances"],
        opt=ADMIN,
    )
    async def get_limits(self, user_id: PathId, services: ServicesDep) -> LimitsResponse:
        """The limits and the balances; defaults: credit_limit 0.00, not frozen."""
        return render.limits_response(await get_limits(services.uow, user_id))


@get(
    "/v1/reservations/{order_id:int}",
    responses=openapi_responses(200, ReservationResponse, "", 404),
    operation_id="getReservation",
    summary="Get a reservation",
    tags=["reservations"],
    opt=READ,
)
async def get_reservation_by_order(order_id: PathId, services: ServicesDep) -> JsonAnswer:
    """A reservation read after its expires_at is expired first (on the time its owner's
    next batch would take), so no answer shows a hold that has run out."""
    found = await get_reservation(services.uow, services.movements.look_at, order_id)
    return JsonAnswer.of(render.reservation_closed(found))


KIND_VALUES = ", ".join(k.value for k in EntryKind)
# Declared as text and read here: Litestar would take the text "null" as no value
# for an optional enum or integer, and accept what the published schema refuses.
SortParam = Annotated[
    str | None,
    QueryParameter(
        description="date (default) or amount (size)", schema_extra={"enum": ["date", "amount"]}
    ),
]
OrderParam = Annotated[
    str | None,
    QueryParameter(description="desc (default)", schema_extra={"enum": ["desc", "asc"]}),
]
CursorParam = Annotated[
    str | None, QueryParameter(max_length=1000, description="next_cursor of the previous page")
]
MAX_PAGE = 10**9
PageParam = Annotated[
    str | None,
    QueryParameter(
        description="1-based page (instead of a cursor)",
        schema_extra={"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
    ),
]
KindParam = Annotated[
    list[str] | None, QueryParameter(description=f"repeat or comma-separate: {KIND_VALUES}")
]


@get(
    "/v1/users/{user_id:int}/transactions",
    responses=openapi_responses(200, StatementResponse, "", 404),
    operation_id="listUserTransactions",
    summary="List a user's transactions (statement)",
    tags=["balances"],
    opt={**READ, QUERY_PREFIX: "metadata."},
)
async def get_user_transactions(
    user_id: PathId,
    services: ServicesDep,
    request: Request[Any, Any, Any],
    *,
    sort: SortParam = None,
    order: OrderParam = None,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = 50,
    cursor: CursorParam = None,
    page: PageParam = None,
    since: Annotated[
        str | None,
        QueryParameter(name="from", format="date-time", description="RFC 3339, inclusive"),
    ] = None,
    until: Annotated[
        str | None, QueryParameter(name="to", format="date-time", description="RFC 3339, exclusive")
    ] = None,
    kind: KindParam = None,
) -> JsonAnswer:
    """Every entry on the user's available and reserved accounts, explained."""
    query = build_query(
        user_id,
        limit=limit,
        page=_whole(page, "page", MAX_PAGE),
        cursor=cursor,
        sort=None if sort is None else StatementSort(_one_of(sort, "sort", ("date", "amount"))),
        descending=None if order is None else _one_of(order, "order", ("desc", "asc")) == "desc",
        since=_utc(since, "from"),
        until=_utc(until, "to"),
        kinds=_kinds(kind),
        metadata=_metadata_filter(request),
    )
    lines = render.statement_response(await statement(query, services.uow))
    return JsonAnswer(render.encode(lines))


def _metadata_filter(request: Request[Any, Any, Any]) -> Metadata | None:
    """`metadata.<key>=<value>` pairs: entries of transactions tagged with all of them."""
    pairs: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if not name.startswith("metadata."):
            continue
        key = name.removeprefix("metadata.")
        if not re.fullmatch(METADATA_KEY, key) or len(key) > MAX_METADATA_KEY:
            raise invalid_field(name, "is not a metadata key: 1..40 of A-Z a-z 0-9 _ . -")
        if key in pairs or len(value) > MAX_METADATA_VALUE or not re.match(NO_CONTROL, value):
            raise invalid_field(
                name, "must be given once, at most 500 characters, no control characters"
            )
        pairs[key] = value
    if len(pairs) > MAX_METADATA_KEYS:
        raise invalid_field("metadata", "filters on at most 20 keys")
    return tuple(sorted(pairs.items())) or None


def _utc(text: str | None, field: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise invalid_field(field, "must be an RFC 3339 time, e.g. 2022-11-01T00:00:00Z") from None
    if moment.tzinfo is None:
        raise invalid_field(field, "needs a time zone (RFC 3339), e.g. 2022-11-01T00:00:00Z")
    return moment.astimezone(UTC)


def _one_of(value: str | None, field: str, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise invalid_field(field, f"must be one of {', '.join(allowed)}")
    return value


def _whole(text: str | None, field: str, most: int) -> int | None:
    """An optional query integer, read here as text: Litestar takes the text "null" for
    no value of an optional int."""
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= most):
        raise invalid_field(field, f"must be a whole number from 1 to {most}")
    return int(text)


def _kinds(values: list[str] | None) -> frozenset[EntryKind] | None:
    if not values:
        return None
    names = {name.strip() for value in values for name in value.split(",") if name.strip()}
    try:
        return frozenset(EntryKind(name) for name in names)
    except ValueError:
        raise invalid_field("kind", f"must be among {KIND_VALUES}") from None


@get(
    "/v1/users/{user_id:int}/balance",
    responses=openapi_responses(200, BalanceResponse, "", 404),
    operation_id="getUserBalance",
    summary="Get a user's balance",
    tags=["balances"],
    opt=READ,
)
async def get_user_balance(
    user_id: PathId,
    services: ServicesDep,
    as_of: Annotated[
        str | None, QueryParameter(format="date-time", description="RFC 3339: the balances then")
    ] = None,
) -> JsonAnswer:
    """A user's available and reserved money, now or as of a past instant."""
    moment = _utc(as_of, "as_of")
    balance = render.balance_response(await get_balance(user_id, services.uow, moment))
    return JsonAnswer(render.encode(balance))


@get(
    "/v1/events",
    responses=openapi_responses(200, EventsPage, ""),
    operation_id="listEvents",
    summary="List events after a position (the pull API)",
    tags=["events"],
    opt=READ,
)
async def get_events(
    services: ServicesDep,
    after: Annotated[
        int, QueryParameter(ge=0, le=2**63 - 1, description="The last event_id already seen")
    ] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_EVENTS_PAGE)] = 100,
    user_id: Annotated[
        str | None,
        QueryParameter(
            description="Only this user's events",
            schema_extra={"type": "integer", "minimum": 1, "maximum": MAX_ID},
        ),
    ] = None,
) -> JsonAnswer:
    """Events in event_id order, which is commit order: a reader that has seen N never
    later gets one below N. Poll with `after` = the previous page's `next_after`. One
    event per user a ledger transaction touches, one per limit change (README,
    decision 41); the same messages the relay publishes to RabbitMQ."""
    found = await events_after(services.uow, after, limit, _whole(user_id, "user_id", MAX_ID))
    page = EventsPage([event_out(e) for e in found], found[-1].event_id if found else after)
    return JsonAnswer(render.encode(page))


ROUTES: list[ControllerRouterHandler] = [
    post_deposit,
    post_withdrawal,
    post_transfer,
    post_reservation,
    post_recognize,
    post_cancel,
    post_movement,
    Limits,
    get_reservation_by_order,
    get_user_balance,
    get_user_transactions,
    get_events,
]
