"""The money routes, each once: its path, request struct, and how a decoded request
becomes a command for the batcher under its Idempotency-Key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from application.cancel import Cancel, cancel
from application.deposit import Deposit, deposit
from application.ports import StoredResponse
from application.recognize import Recognize, recognize
from application.reserve import Reserve, reserve
from application.runner import MoneyMovements
from application.transfer import Transfer, transfer
from application.withdraw import Withdraw, withdraw
from domain.money import Money
from entrypoints.http import render
from entrypoints.http.decoding import invalid_field
from entrypoints.http.schemas import (
    CancelRequest,
    DepositRequest,
    RecognizeRequest,
    ReservationRequest,
    TransferRequest,
    WithdrawalRequest,
)

S = TypeVar("S", bound=msgspec.Struct)
MAX_KEY_LENGTH = 255
Apply = Callable[[MoneyMovements, S, int, str | None], Awaitable[StoredResponse]]


@dataclass(frozen=True, slots=True)
class MoneyRoute(Generic[S]):
    """POST `path` with a `request` body; `{order_id:int}` in the path is the order."""

    path: str
    request: type[S]
    apply: Apply[S]


async def _deposit(
    movements: MoneyMovements, data: DepositRequest, _: int, key: str | None
) -> StoredResponse:
    cmd = Deposit(data.user_id, Money.amount(data.amount), data.description or None)
    return await movements.execute(deposit, cmd, render.movement, key)


async def _withdraw(
    movements: MoneyMovements, data: WithdrawalRequest, _: int, key: str | None
) -> StoredResponse:
    cmd = Withdraw(data.user_id, Money.amount(data.amount), data.description or None)
    return await movements.execute(withdraw, cmd, render.movement, key)


async def _transfer(
    movements: MoneyMovements, data: TransferRequest, _: int, key: str | None
) -> StoredResponse:
    amount = Money.amount(data.amount)
    cmd = Transfer(data.from_user_id, data.to_user_id, amount, data.description or None)
    return await movements.execute(transfer, cmd, render.transfer, key)


async def _reserve(
    movements: MoneyMovements, data: ReservationRequest, _: int, key: str | None
) -> StoredResponse:
    amount = Money.amount(data.amount)
    description = data.description or None
    cmd = Reserve(data.user_id, data.service_id, data.order_id, amount, description)
    return await movements.execute(reserve, cmd, render.reservation_opened, key)


async def _recognize(
    movements: MoneyMovements, data: RecognizeRequest, order_id: int, key: str | None
) -> StoredResponse:
    cmd = Recognize(order_id, data.user_id, data.service_id, Money.amount(data.amount))
    return await movements.execute(recognize, cmd, render.reservation_closed, key)


async def _cancel(
    movements: MoneyMovements, data: CancelRequest, order_id: int, key: str | None
) -> StoredResponse:
    cmd = Cancel(order_id, data.user_id, data.service_id)
    return await movements.execute(cancel, cmd, render.reservation_closed, key)


def idempotency_key(value: str | None) -> str | None:
    if value is not None and not (
        1 <= len(value) <= MAX_KEY_LENGTH and all(" " <= ch <= "~" for ch in value)
    ):
        raise invalid_field("Idempotency-Key", "must be 1..255 printable ASCII characters")
    return value


DEPOSIT = MoneyRoute("/v1/deposits", DepositRequest, _deposit)
WITHDRAWAL = MoneyRoute("/v1/withdrawals", WithdrawalRequest, _withdraw)
TRANSFER = MoneyRoute("/v1/transfers", TransferRequest, _transfer)
RESERVATION = MoneyRoute("/v1/reservations", ReservationRequest, _reserve)
RECOGNITION = MoneyRoute("/v1/reservations/{order_id:int}/recognize", RecognizeRequest, _recognize)
CANCELLATION = MoneyRoute("/v1/reservations/{order_id:int}/cancel", CancelRequest, _cancel)

MONEY_ROUTES: tuple[MoneyRoute[Any], ...] = (
    DEPOSIT,
    WITHDRAWAL,
    TRANSFER,
    RESERVATION,
    RECOGNITION,
    CANCELLATION,
)
