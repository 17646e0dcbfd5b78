from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from application.accounts import lock_account
from application.fingerprint import tagged
from application.locked import Movement
from application.reservations import lock_reservation
from application.results import Balance, ReservationResult
from domain.ledger import EntryKind, JournalTransaction, Metadata, TransactionKind
from domain.reservation import ReservationStatus


@dataclass(frozen=True, slots=True)
class Cancel:
    """Give held money back: the service could not be provided."""

    order_id: int
    user_id: int
    service_id: int
    metadata: Metadata = ()
    moves_money: ClassVar[bool] = True

    @property
    def user_ids(self) -> tuple[int, ...]:
        return (self.user_id,)

    @property
    def order_ids(self) -> tuple[int, ...]:
        return (self.order_id,)

    def canonical(self) -> tuple[object, ...]:
        form = ("cancel", 1, self.order_id, self.user_id, self.service_id)
        return tagged(form, self.metadata)

    def legacy(self) -> str | None:
        if self.metadata:
            return None
        return (
            f"cancel:Cancel(order_id={self.order_id}, user_id={self.user_id},"
            f" service_id={self.service_id})"
        )


def cancel(cmd: Cancel, uow: Movement) -> ReservationResult:
    reservation = lock_reservation(uow, cmd.order_id, cmd.user_id, cmd.service_id)
    account = lock_account(uow, reservation.user_id)
    if reservation.status is ReservationStatus.CANCELLED:
        return ReservationResult(reservation, Balance.of(account), False, cmd.metadata)
    amount = reservation.cancel()
    postings = account.release(amount, EntryKind.CANCEL)
    uow.accounts.save(account)
    recorded = uow.journal.record(
        JournalTransaction(
            TransactionKind.CANCEL,
            postings,
            user_id=cmd.user_id,
            service_id=cmd.service_id,
            order_id=cmd.order_id,
            metadata=cmd.metadata,
        )
    )
    reservation.closed_at = recorded.created_at
    uow.reservations.close(reservation)
    return ReservationResult(reservation, Balance.of(account), True, cmd.metadata)
