"""Thin handlers: struct in -> command -> use case -> bytes out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from litestar import Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter

from application.cancel import Cancel, cancel
from application.deposit import Deposit, deposit
from application.get_balance import get_balance
from application.ports import RevenueReports, RevenueReportWriter, StoredResponse, UnitOfWork
from application.recognize import Recognize, recognize
from application.reservations import get_reservation
from application.reserve import Reserve, reserve
from application.runner import MoneyMovements
from application.statement import build_query, statement
from application.statement_query import MAX_LIMIT, StatementSort
from application.transfer import Transfer, transfer
from application.withdraw import Withdraw, withdraw
from domain.ledger import EntryKind
from domain.money import Money
from entrypoints.http import render
from entrypoints.http.auth import READ, WRITE
from entrypoints.http.decoding import StrictJSON, invalid_field
from entrypoints.http.schemas import (
    MAX_ID,
    BalanceResponse,
    CancelRequest,
    DepositRequest,
    MovementResponse,
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
    readiness: Callable[[], Awaitable[str | None]]


IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]+$"
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        description="1..255 printable ASCII; the same key and request replay the first answer",
        # Documented only: _key() checks it, so the refusal names the header.
        schema_extra={"minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN},
    ),
]
PathId = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
ServicesDep = NamedDependency[Services]


def _key(value: str | None) -> str | None:
    if value is not None and not (1 <= len(value) <= 255 and all(" " <= ch <= "~" for ch in value)):
        raise invalid_field("Idempotency-Key", "must be 1..255 printable ASCII characters")
    return value


def _reply(stored: StoredResponse) -> Response[bytes]:
    return Response(stored.body, status_code=stored.status, media_type="application/json")


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
        success: ResponseSpec(data_container=body, description=description, media_type=media_type)
    }
    if also is not None:
        docs[also[0]] = ResponseSpec(data_container=body, description=also[1])
    for status in (400, 422, *refusals):
        docs[status] = ResponseSpec(
            data_container=Problem, media_type="application/problem+json", description="Refused"
        )
    return docs


@post(
    "/v1/deposits",
    dto=StrictJSON[DepositRequest],
    return_dto=None,
    responses=openapi_responses(201, MovementResponse, "Deposited; the balances after it"),
    tags=["money"],
    opt=WRITE,
)
async def post_deposit(
    data: JSONBody[DepositRequest], services: ServicesDep, idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """Money paid in from outside to a user; the first deposit opens the user's account."""
    cmd = Deposit(data.user_id, Money.amount(data.amount), data.description or None)
    key = _key(idempotency_key)
    return _reply(await services.movements.execute(deposit, cmd, render.movement, key))


@post(
    "/v1/withdrawals",
    dto=StrictJSON[WithdrawalRequest],
    return_dto=None,
    responses=openapi_responses(
        201, MovementResponse, "Withdrawn; the balances after it", 404, 409
    ),
    tags=["money"],
    opt=WRITE,
)
async def post_withdrawal(
    data: JSONBody[WithdrawalRequest], services: ServicesDep, idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """Money paid out of a user's available balance."""
    cmd = Withdraw(data.user_id, Money.amount(data.amount), data.description or None)
    key = _key(idempotency_key)
    return _reply(await services.movements.execute(withdraw, cmd, render.movement, key))


@post(
    "/v1/transfers",
    dto=StrictJSON[TransferRequest],
    return_dto=None,
    responses=openapi_responses(
        201, TransferResponse, "Transferred; both users' balances after it", 404, 409
    ),
    tags=["money"],
    opt=WRITE,
)
async def post_transfer(
    data: JSONBody[TransferRequest], services: ServicesDep, idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """Move money between two users' available balances."""
    cmd = Transfer(
        data.from_user_id, data.to_user_id, Money.amount(data.amount), data.description or None
    )
    key = _key(idempotency_key)
    return _reply(await services.movements.execute(transfer, cmd, render.transfer, key))


@post(
    "/v1/reservations",
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
    tags=["reservations"],
    opt=WRITE,
)
async def post_reservation(
    data: JSONBody[ReservationRequest],
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> Response[bytes]:
    """Hold money for an order. The same order again answers 200 with the reservation."""
    cmd = Reserve(
        data.user_id,
        data.service_id,
        data.order_id,
        Money.amount(data.amount),
        data.description or None,
    )
    key = _key(idempotency_key)
    return _reply(await services.movements.execute(reserve, cmd, render.reservation_opened, key))


@post(
    "/v1/reservations/{order_id:int}/recognize",
    dto=StrictJSON[RecognizeRequest],
    return_dto=None,
    status_code=200,
    responses=openapi_responses(200, ReservationResponse, "Recognized as revenue", 404, 409),
    tags=["reservations"],
    opt=WRITE,
)
async def post_recognize(
    order_id: PathId,
    data: JSONBody[RecognizeRequest],
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> Response[bytes]:
    """Recognize held money as revenue; an amount below the reserved one releases the rest."""
    cmd = Recognize(order_id, data.user_id, data.service_id, Money.amount(data.amount))
    key = _key(idempotency_key)
    return _reply(await services.movements.execute(recognize, cmd, render.reservation_closed, key))


@post(
    "/v1/reservations/{order_id:int}/cancel",
    dto=StrictJSON[CancelRequest],
    return_dto=None,
    status_code=200,
    responses=openapi_responses(
        200, ReservationResponse, "Cancelled; the money is available again", 404, 409
    ),
    tags=["reservations"],
    opt=WRITE,
)
async def post_cancel(
    order_id: PathId,
    data: JSONBody[CancelRequest],
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> Response[bytes]:
    """Release held money back to the user: the service could not be provided."""
    cmd = Cancel(order_id, data.user_id, data.service_id)
    key = _key(idempotency_key)
    return _reply(await services.movements.execute(cancel, cmd, render.reservation_closed, key))


@get(
    "/v1/reservations/{order_id:int}",
    responses=openapi_responses(200, ReservationResponse, "", 404),
    tags=["reservations"],
    opt=READ,
)
async def get_reservation_by_order(order_id: PathId, services: ServicesDep) -> ReservationResponse:
    return render.reservation_response(await get_reservation(services.uow(), order_id))


KIND_VALUES = ", ".join(k.value for k in EntryKind)
SortParam = Annotated[
    Literal["date", "amount"] | None, QueryParameter(description="date (default) or amount (size)")
]
OrderParam = Annotated[Literal["desc", "asc"] | None, QueryParameter(description="desc (default)")]
CursorParam = Annotated[
    str | None, QueryParameter(max_length=1000, description="next_cursor of the previous page")
]
PageParam = Annotated[
    int | None, QueryParameter(ge=1, le=10**9, description="1-based page (instead of a cursor)")
]
KindParam = Annotated[
    list[str] | None, QueryParameter(description=f"repeat or comma-separate: {KIND_VALUES}")
]


@get(
    "/v1/users/{user_id:int}/transactions",
    responses=openapi_responses(200, StatementResponse, "", 404),
    tags=["balances"],
    opt=READ,
)
async def get_user_transactions(
    user_id: PathId,
    services: ServicesDep,
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
) -> StatementResponse:
    """Every entry on the user's available and reserved accounts, explained."""
    query = build_query(
        user_id,
        limit=limit,
        page=page,
        cursor=cursor,
        sort=StatementSort(sort) if sort else None,
        descending=None if order is None else order == "desc",
        since=_utc(since, "from"),
        until=_utc(until, "to"),
        kinds=_kinds(kind),
    )
    return render.statement_response(await statement(query, services.uow()))


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
    tags=["balances"],
    opt=READ,
)
async def get_user_balance(
    user_id: PathId,
    services: ServicesDep,
    as_of: Annotated[
        str | None, QueryParameter(format="date-time", description="RFC 3339: the balances then")
    ] = None,
) -> BalanceResponse:
    """A user's available and reserved money, now or as of a past instant."""
    moment = _utc(as_of, "as_of")
    return render.balance_response(await get_balance(user_id, services.uow(), moment))


ROUTES = [
    post_deposit,
    post_withdrawal,
    post_transfer,
    post_reservation,
    post_recognize,
    post_cancel,
    get_reservation_by_order,
    get_user_balance,
    get_user_transactions,
]
