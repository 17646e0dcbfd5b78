"""Reservations that expire: at `expires_at` the held money goes back to available.

The decision is made on the store's clock (PostgreSQL's `clock_timestamp()`, taken
by the batch after its locks), never an app server's, so a server whose clock is
wrong cannot recognize a reservation that has expired. Every batch expires the due
reservations it locked before it applies its commands, so a request that touches
one after that instant finds it expired; the sweeper (sweeper.py) sends the others
through the same engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from application.locked import Movement
from application.ports import StoredResponse
from application.results import Balance, ReservationResult
from domain.errors import ReservationNotFound, UserNotFound
from domain.ledger import EntryKind, JournalTransaction, TransactionKind


@dataclass(frozen=True, slots=True)
class Expire:
    """Look at a reservation whose hold may have run out (the sweeper's command)."""

    order_id: int
    user_id: int

    @property
    def user_ids(self) -> tuple[int, ...]:
        return (self.user_id,)

    @property
    def order_ids(self) -> tuple[int, ...]:
        return (self.order_id,)

    def canonical(self) -> tuple[object, ...]:
        return ("expire", 1, self.order_id, self.user_id)


async def expire_if_due(order_id: int, uow: Movement) -> bool:
    """Release a due reservation's money, if its batch holds its user's lock."""
    reservation = await uow.reservations.lock(order_id)
    if reservation is None or not reservation.is_due(uow.now):
        return False
    if not uow.accounts.holds(reservation.user_id):
        return False  # the sweeper's own command will lock the owner
    account = (await uow.accounts.lock([reservation.user_id]))[reservation.user_id]
    postings = account.release(reservation.expire(), EntryKind.EXPIRE)
    await uow.accounts.save(account)
    recorded = await uow.journal.record(
        JournalTransaction(
            TransactionKind.EXPIRE,
            postings,
            user_id=reservation.user_id,
            service_id=reservation.service_id,
            order_id=order_id,
        )
    )
    reservation.closed_at = recorded.created_at
    await uow.reservations.close(reservation)
    return True


async def expire(cmd: Expire, uow: Movement) -> ReservationResult:
    """By the time this runs its batch has expired the reservation if it was due:
    answer with the reservation as it is."""
    reservation = await uow.reservations.get(cmd.order_id)
    if reservation is None:
        raise ReservationNotFound(cmd.order_id)
    account = await uow.accounts.get(reservation.user_id)
    if account is None:
        raise UserNotFound(reservation.user_id)
    return ReservationResult(reservation, Balance.of(account), created=False)


def ignore_answer(_: ReservationResult) -> StoredResponse:
    """The sweeper reads no answer."""
    return StoredResponse(200, b"")
