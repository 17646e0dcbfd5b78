"""Reservation reads and the lookup the closing use cases share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from application.locked import Movement
from application.ports import UnitOfWork
from application.results import Balance, ReservationResult
from domain.errors import ReservationNotFound, UserNotFound
from domain.reservation import Reservation


def lock_reservation(uow: Movement, order_id: int, user_id: int, service_id: int) -> Reservation:
    reservation = uow.reservations.get(order_id)
    if reservation is None:
        raise ReservationNotFound(order_id)
    reservation.check_party(user_id, service_id)
    return reservation


async def get_reservation(
    units: Callable[[], UnitOfWork],
    look_at: Callable[[int, int], Awaitable[object]],
    order_id: int,
) -> ReservationResult:
    """The reservation and its user's balances. Read after its `expires_at` (on the
    time the user's next batch would take, read with it: the store's clock, or later
    after a clock that stepped back), it is expired first by a batch that locks it
    (`look_at(user_id, order_id)`), so no answer shows a hold that has run out."""
    found, due = await _read(units, order_id)
    if due:
        await look_at(found.reservation.user_id, order_id)
        found, _ = await _read(units, order_id)
    return found


async def _read(units: Callable[[], UnitOfWork], order_id: int) -> tuple[ReservationResult, bool]:
    async with units() as uow:
        reservation, now = await uow.reservations.get(order_id)
        if reservation is None:
            raise ReservationNotFound(order_id)
        account = await uow.accounts.get(reservation.user_id)
    if account is None:  # pragma: no cover - a reservation always has an account
        raise UserNotFound(reservation.user_id)
    found = ReservationResult(
        reservation, Balance.of(account), created=False, metadata=reservation.metadata
    )
    return found, reservation.is_due(now)
