from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from application.accounts import lock_account
from application.fingerprint import legacy_money, tagged
from application.locked import Movement
from application.reservations import lock_reservation
from application.results import Balance, ReservationResult
from domain.ledger import (
    AccountRef,
    EntryKind,
    JournalTransaction,
    Metadata,
    Posting,
    TransactionKind,
)
from domain.money import Money


@dataclass(frozen=True, slots=True)
class Recognize:
    """Turn held money into the company's revenue; a smaller amount releases the rest."""

    order_id: int
    user_id: int
    service_id: int
    amount: Money
    metadata: Metadata = ()
    moves_money: ClassVar[bool] = True

    @property
    def user_ids(self) -> tuple[int, ...]:
        return (self.user_id,)

    @property
    def order_ids(self) -> tuple[int, ...]:
        return (self.order_id,)

    def canonical(self) -> tuple[object, ...]:
        form = ("recognize", 1, self.order_id, self.user_id, self.service_id, self.amount.kopecks)
        return tagged(form, self.metadata)

    def legacy(self) -> str | None:
        if self.metadata:
            return None
        return (
            f"recognize:Recognize(order_id={self.order_id}, user_id={self.user_id},"
            f" service_id={self.service_id}, amount={legacy_money(self.amount)})"
        )


def recognize(cmd: Recognize, uow: Movement) -> ReservationResult:
    reservation = lock_reservation(uow, cmd.order_id, cmd.user_id, cmd.service_id)
    account = lock_account(uow, reservation.user_id)
    if reservation.is_recognized_as(cmd.amount):
        return ReservationResult(reservation, Balance.of(account), False, cmd.metadata)
    rest = reservation.recognize(cmd.amount)
    postings = [
        account.settle(cmd.amount),
        Posting(AccountRef.revenue(cmd.service_id), EntryKind.RECOGNIZE, cmd.amount, None),
    ]
    if rest.kopecks:
        postings.extend(account.release(rest, EntryKind.RELEASE))
    uow.accounts.save(account)
    recorded = uow.journal.record(
        JournalTransaction(
            TransactionKind.RECOGNIZE,
            tuple(postings),
            user_id=cmd.user_id,
            service_id=cmd.service_id,
            order_id=cmd.order_id,
            metadata=cmd.metadata,
        )
    )
    reservation.closed_at = recorded.created_at
    uow.reservations.close(reservation)
    return ReservationResult(reservation, Balance.of(account), True, cmd.metadata)
