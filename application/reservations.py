"""Reservation reads and the lookup the closing use cases share."""

from __future__ import annotations

from application.locked import Movement
from application.ports import UnitOfWork
from application.results import Balance, ReservationResult
from domain.errors import ReservationNotFound, UserNotFound
from domain.reservation import Reservation


async def lock_reservation(
    uow: Movement, order_id: int, user_id: int, service_id: int
) -> Reservation:
    reservation = await uow.reservations.lock(order_id)
    if reservation is None:
        raise ReservationNotFound(order_id)
    reservation.check_party(user_id, service_id)
    return reservation


async def get_reservation(uow: UnitOfWork, order_id: int) -> ReservationResult:
    """The reservation and its user's balances, read in one unit of work."""
    async with uow:
        reservation = await uow.reservations.get(order_id)
        if reservation is None:
            raise ReservationNotFound(order_id)
        account = await uow.accounts.get(reservation.user_id)
    if account is None:  # pragma: no cover - a reservation always has an account
        raise UserNotFound(reservation.user_id)
    return ReservationResult(reservation, Balance.of(account), created=False)
