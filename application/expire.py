"""Reservations that expire: at `expires_at` the held money goes back to available.

The decision is made on the store's clock (PostgreSQL's `clock_timestamp()`, taken
by the batch after its locks, or read with the reservation; or the locked rows'
`updated_at`, if later, after a clock that stepped back), never an app server's,
so a server whose clock is wrong cannot recognize a reservation that has expired.
Every batch expires the due reservations it locked before it applies its requests
(application/apply.py), so a request that touches one after that instant finds it
expired; the sweeper (sweeper.py) and a read of a due reservation send the others
to a batch that locks them (`work.look_at`).
"""

from __future__ import annotations

from application.locked import Movement
from domain.ledger import EntryKind, JournalTransaction, TransactionKind


def expire_if_due(order_id: int, uow: Movement) -> bool:
    """Release a due reservation's money, if its batch holds its user's lock."""
    reservation = uow.reservations.get(order_id)
    if reservation is None or not reservation.is_due(uow.now):
        return False
    if not uow.accounts.holds(reservation.user_id):
        return False  # a batch that locks the owner will
    account = uow.accounts.lock([reservation.user_id])[reservation.user_id]
    postings = account.release(reservation.expire(), EntryKind.EXPIRE)
    uow.accounts.save(account)
    recorded = uow.journal.record(
        JournalTransaction(
            TransactionKind.EXPIRE,
            postings,
            user_id=reservation.user_id,
            service_id=reservation.service_id,
            order_id=order_id,
        )
    )
    reservation.closed_at = recorded.created_at
    uow.reservations.close(reservation)
    return True
