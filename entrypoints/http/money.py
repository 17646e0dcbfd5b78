"""The money routes, each once: its path, request struct, and how a decoded request
becomes a command for the batcher under its Idempotency-Key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from application.cancel import Cancel, cancel
from application.deposit import Deposit, deposit
from application.ports import StoredResponse
from application.recognize import Recognize, recognize
from application.reserve import Reserve, reserve
from application.runner import Command, MoneyMovements, Render, UseCase
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
Planned = tuple[UseCase[Any, Any], Command, Render[Any]]


@dataclass(frozen=True, slots=True)
class MoneyRoute(Generic[S]):
    """POST `path` with a `request` body; `{order_id:int}` in the path is the order.
    `plan` turns a decoded request into its use case, command and answer."""

    path: str
    request: type[S]
    plan: Callable[[S, int], Planned]

    async def apply(
        self, movements: MoneyMovements, data: S, order_id: int, key: str | None
    ) -> StoredResponse:
        use_case, command, render_result = self.plan(data, order_id)
        return await movements.execute(use_case, command, render_result, key)


def _deposit(data: DepositRequest, _: int) -> Planned:
    cmd = Deposit(data.user_id, Money.amount(data.amount), data.description or None)
    return deposit, cmd, render.movement


def _withdraw(data: WithdrawalRequest, _: int) -> Planned:
    cmd = Withdraw(data.user_id, Money.amount(data.amount), data.description or None)
    return withdraw, cmd, render.movement


def _transfer(data: TransferRequest, _: int) -> Planned:
    amount = Money.amount(data.amount)
    cmd = Transfer(data.from_user_id, data.to_user_id, amount, data.description or None)
    return transfer, cmd, render.transfer


def _reserve(data: ReservationRequest, _: int) -> Planned:
    amount = Money.amount(data.amount)
    description = data.description or None
    cmd = Reserve(
        data.user_id, data.service_id, data.order_id, amount, description, data.expires_at
    )
    return reserve, cmd, render.reservation_opened


def _recognize(data: RecognizeRequest, order_id: int) -> Planned:
    cmd = Recognize(order_id, data.user_id, data.service_id, Money.amount(data.amount))
    return recognize, cmd, render.reservation_closed


def _cancel(data: CancelRequest, order_id: int) -> Planned:
    return cancel, Cancel(order_id, data.user_id, data.service_id), render.reservation_closed


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
