"""The money routes, each once: its path, request struct, and how a decoded request
becomes a command for the batcher under its Idempotency-Key."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import msgspec
from litestar import Request
from litestar.exceptions import InternalServerException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from application.cancel import Cancel, cancel
from application.deposit import Deposit, deposit
from application.move import Move, move
from application.recognize import Recognize, recognize
from application.reserve import Reserve, reserve
from application.runner import Command, MoneyMovements, Render, UseCase
from application.transfer import Transfer, transfer
from application.withdraw import Withdraw, withdraw
from domain.errors import InvalidAmount
from domain.ledger import Metadata
from domain.money import Money
from domain.movement import Leg
from entrypoints.http import render
from entrypoints.http.answer import JsonAnswer
from entrypoints.http.auth import caller_of
from entrypoints.http.decoding import (
    BODY_REQUIRED,
    CLIENT_GONE,
    FieldError,
    RequestInvalid,
    check_body_text,
    check_content_type,
    content_type_twice,
    decode_strict,
    invalid_field,
)
from entrypoints.http.schemas import (
    CancelRequest,
    DepositRequest,
    Id,
    MovementRequest,
    RecognizeRequest,
    ReservationRequest,
    TransferRequest,
    WithdrawalRequest,
)

if TYPE_CHECKING:
    from litestar.types import HTTPReceiveMessage

S = TypeVar("S", bound=msgspec.Struct)
MAX_KEY_LENGTH = 255
Planned = tuple[UseCase[Any, Any], Command, Render[Any]]


@dataclass(frozen=True, slots=True)
class MoneyRoute(Generic[S]):
    """POST `path` with a `request` body; `{order_id:int}` in the path is the order.
    `plan` turns a decoded request into its use case, command and answer."""

    path: str
    request: type[S]
    plan: Callable[[S, int], Planned]

    async def apply(
        self,
        movements: MoneyMovements,
        data: S,
        order_id: int,
        key: str | None,
        caller: str | None = None,
    ) -> JsonAnswer:
        """A decoded request's answer, under its Idempotency-Key header as given
        (checked here, after the body, as the handlers always did), recorded as the
        `caller`'s doing."""
        use_case, command, render_result = self.plan(data, order_id)
        key = idempotency_key(key)
        stored = await movements.execute(use_case, command, render_result, key, caller)
        return JsonAnswer.of(stored)

    async def answer(
        self, request: Request[Any, Any, Any], movements: MoneyMovements
    ) -> JsonAnswer:
        """The route's answer, read from the request as it came: what Litestar's
        extraction does for the handler's signature (the body within its limit, the
        StrictJSON DTO's checks, the Idempotency-Key header), in the same order and with
        the same refusals, without its per-request machinery (a kwargs model, a DTO
        instance, a headers object, a signature model): a fifth of a reserve's CPU in
        the worker. The order id of a path, as Litestar's router parsed it, is checked
        as the handler's signature model checked it (`PathId`), after the body."""
        content_type, key, length = request_headers(request.scope["headers"])
        body = await read_body(request, length)
        if not body:  # Litestar's extractor gives no data: its signature model refuses
            raise RequestInvalid(400, BODY_REQUIRED, [FieldError("body", BODY_REQUIRED)])
        check_content_type(content_type)
        data = decode_strict(body, self.request)
        check_body_text(body)
        path = request.path_params
        order_id = _order_id(path["order_id"]) if "order_id" in path else 0
        return await self.apply(movements, data, order_id, key, caller_of(request.scope))


def _order_id(order_id: int) -> int:
    """The path's order id within `Id`'s bounds, refused as the signature model refuses
    it (a validation error on the path parameter `order_id`)."""
    try:
        return msgspec.convert(order_id, Id)
    except msgspec.ValidationError as error:
        extra = [{"message": str(error), "key": "order_id", "source": "path"}]
        raise ValidationException("Validation failed", extra=extra) from None


async def read_body(request: Request[Any, Any, Any], announced: bytes | None) -> bytes:
    """The body from the ASGI messages, as Litestar's `Request.body` reads it: refused
    before reading when its `announced` length (the Content-Length header) is over the
    route's limit, and as soon as what came is."""
    limit = request.route_handler.resolve_request_max_body_size() or math.inf
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise RequestEntityTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = cast("HTTPReceiveMessage", await request.receive())
        if message["type"] == "http.disconnect":
            raise InternalServerException(CLIENT_GONE)
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise RequestEntityTooLarge
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def tags(metadata: dict[str, str]) -> Metadata:
    """A request's metadata as the ledger keeps it: pairs sorted by key."""
    return tuple(sorted(metadata.items()))


def _deposit(data: DepositRequest, _: int) -> Planned:
    amount = Money.amount(data.amount)
    cmd = Deposit(data.user_id, amount, data.description or None, tags(data.metadata))
    return deposit, cmd, render.movement


def _withdraw(data: WithdrawalRequest, _: int) -> Planned:
    amount = Money.amount(data.amount)
    cmd = Withdraw(data.user_id, amount, data.description or None, tags(data.metadata))
    return withdraw, cmd, render.movement


def _transfer(data: TransferRequest, _: int) -> Planned:
    amount = Money.amount(data.amount)
    cmd = Transfer(
        data.from_user_id,
        data.to_user_id,
        amount,
        data.description or None,
        tags(data.metadata),
    )
    return transfer, cmd, render.transfer


def _reserve(data: ReservationRequest, _: int) -> Planned:
    cmd = Reserve(
        data.user_id,
        data.service_id,
        data.order_id,
        Money.amount(data.amount),
        data.description or None,
        data.expires_at,
        tags(data.metadata),
    )
    return reserve, cmd, render.reservation_opened


def _recognize(data: RecognizeRequest, order_id: int) -> Planned:
    amount = Money.amount(data.amount)
    cmd = Recognize(order_id, data.user_id, data.service_id, amount, tags(data.metadata))
    return recognize, cmd, render.reservation_closed


def _cancel(data: CancelRequest, order_id: int) -> Planned:
    cmd = Cancel(order_id, data.user_id, data.service_id, tags(data.metadata))
    return cancel, cmd, render.reservation_closed


def _move(data: MovementRequest, _: int) -> Planned:
    legs = [Leg(leg.user_id, _signed(leg.amount, index)) for index, leg in enumerate(data.legs)]
    cmd = Move.of(legs, data.description or None, tags(data.metadata))
    return move, cmd, render.moved


def _signed(amount: Decimal, index: int) -> Money:
    field = f"legs[{index}].amount"
    try:
        money = Money.from_rubles(amount)
    except InvalidAmount as error:
        raise InvalidAmount(error.reason, field) from None
    if not money.kopecks:
        raise InvalidAmount("must not be zero", field)
    return money


def request_headers(
    headers: Iterable[tuple[bytes, bytes]],
) -> tuple[str | None, str | None, bytes | None]:
    """Content-Type, Idempotency-Key and Content-Length, the first of each, as Litestar
    takes them. But two Idempotency-Key headers are refused, 422: ambiguous, as a
    body's key given twice is. A proxy may join them into one (`a, b`, a key of its
    own), another pass both, and a service that took the first would apply a retry
    sent the other way again. Two Content-Type headers are 415, for the same reason."""
    content_type = key = length = None
    for name, value in headers:
        if name == b"content-type":
            if content_type is not None:
                raise content_type_twice()
            content_type = value.decode("latin-1")
        elif name == b"idempotency-key":
            if key is not None:
                raise invalid_field("Idempotency-Key", "is given more than once")
            key = value.decode("latin-1")
        elif name == b"content-length" and length is None:
            length = value
    return content_type, key, length


def idempotency_key(value: str | None) -> str | None:
    # Printable ASCII is " " to "~": isprintable() refuses the controls and DEL.
    if value is not None and not (
        1 <= len(value) <= MAX_KEY_LENGTH and value.isascii() and value.isprintable()
    ):
        raise invalid_field("Idempotency-Key", "must be 1..255 printable ASCII characters")
    return value


DEPOSIT = MoneyRoute("/v1/deposits", DepositRequest, _deposit)
WITHDRAWAL = MoneyRoute("/v1/withdrawals", WithdrawalRequest, _withdraw)
TRANSFER = MoneyRoute("/v1/transfers", TransferRequest, _transfer)
RESERVATION = MoneyRoute("/v1/reservations", ReservationRequest, _reserve)
RECOGNITION = MoneyRoute("/v1/reservations/{order_id:int}/recognize", RecognizeRequest, _recognize)
CANCELLATION = MoneyRoute("/v1/reservations/{order_id:int}/cancel", CancelRequest, _cancel)
MOVEMENT = MoneyRoute("/v1/movements", MovementRequest, _move)

MONEY_ROUTES: tuple[MoneyRoute[Any], ...] = (
    DEPOSIT,
    WITHDRAWAL,
    TRANSFER,
    RESERVATION,
    RECOGNITION,
    CANCELLATION,
    MOVEMENT,
)
