"""Use-case results to wire structs and the bytes a client (and a replay) gets."""

from __future__ import annotations

import msgspec

from application.ports import StoredResponse
from application.results import (
    Balance,
    LimitsResult,
    MovementResult,
    MoveResult,
    ReservationResult,
    TransferResult,
)
from application.statement import StatementPage
from entrypoints.http.schemas import (
    BalanceOut,
    BalanceResponse,
    LegOut,
    LimitsResponse,
    MovementResponse,
    MoveResponse,
    ReservationResponse,
    StatementItem,
    StatementResponse,
    TransferResponse,
)

encode = msgspec.json.Encoder().encode


def balance_out(balance: Balance) -> BalanceOut:
    return BalanceOut(balance.user_id, balance.available.to_rubles(), balance.reserved.to_rubles())


def balance_response(balance: Balance) -> BalanceResponse:
    return BalanceResponse(
        balance.user_id,
        balance.available.to_rubles(),
        balance.reserved.to_rubles(),
        balance.total.to_rubles(),
    )


def movement(result: MovementResult) -> StoredResponse:
    body = MovementResponse(
        result.transaction_id,
        result.user_id,
        result.amount.to_rubles(),
        balance_out(result.balance),
        result.created_at,
        dict(result.metadata),
    )
    return StoredResponse(201, encode(body))


def transfer(result: TransferResult) -> StoredResponse:
    body = TransferResponse(
        result.transaction_id,
        result.from_user_id,
        result.to_user_id,
        result.amount.to_rubles(),
        balance_out(result.from_balance),
        balance_out(result.to_balance),
        result.created_at,
        dict(result.metadata),
    )
    return StoredResponse(201, encode(body))


def reservation_response(result: ReservationResult) -> ReservationResponse:
    r = result.reservation
    return ReservationResponse(
        order_id=r.order_id,
        user_id=r.user_id,
        service_id=r.service_id,
        amount=r.amount.to_rubles(),
        status=r.status.value,
        created_at=r.created_at,  # type: ignore[arg-type]
        recognized_amount=r.recognized_amount.to_rubles() if r.recognized_amount else None,
        closed_at=r.closed_at,
        balance=balance_out(result.balance),
        expires_at=r.expires_at,
        metadata=dict(result.metadata),
    )


def reservation_opened(result: ReservationResult) -> StoredResponse:
    return StoredResponse(201 if result.created else 200, encode(reservation_response(result)))


def reservation_closed(result: ReservationResult) -> StoredResponse:
    return StoredResponse(200, encode(reservation_response(result)))


def moved(result: MoveResult) -> StoredResponse:
    body = MoveResponse(
        result.transaction_id,
        [
            LegOut(leg.user_id, leg.amount.to_rubles(), balance_out(leg.balance))
            for leg in result.legs
        ],
        result.description,
        dict(result.metadata),
        result.created_at,
    )
    return StoredResponse(201, encode(body))


def limits(result: LimitsResult) -> StoredResponse:
    return StoredResponse(200, encode(limits_response(result)))


def limits_response(result: LimitsResult) -> LimitsResponse:
    return LimitsResponse(
        result.user_id,
        result.credit_limit.to_rubles(),
        result.frozen,
        balance_out(result.balance),
        result.updated_at,
    )


def statement_response(page: StatementPage) -> StatementResponse:
    return StatementResponse(
        [
            StatementItem(
                id=line.entry_id,
                transaction_id=line.transaction_id,
                kind=line.kind.value,
                account=line.account.value,  # type: ignore[arg-type]
                amount=line.amount.to_rubles(),
                balance_after=line.balance_after.to_rubles(),
                description=line.description,
                created_at=line.created_at,
                service_id=line.service_id,
                service_name=line.service_name,
                order_id=line.order_id,
                counterparty_user_id=line.counterparty_user_id,
                metadata=dict(line.metadata),
                caller=line.caller,
            )
            for line in page.lines
        ],
        page.next_cursor,
        page.total,
    )
