from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from application.accounts import lock_account
from application.fingerprint import legacy_money, tagged
from application.locked import Movement
from application.results import Balance, ReservationResult
from domain.errors import OrderAlreadyUsed, ReservationExpired, UserNotFound
from domain.ledger import JournalTransaction, Metadata, TransactionKind
from domain.money import Money
from domain.reservation import Reservation, ReservationStatus


@dataclass(frozen=True, slots=True)
class Reserve:
    """Hold money from a user's available balance for one order of one service."""

    user_id: int
    service_id: int
    order_id: int
    amount: Money
    description: str | None = None
    expires_at: datetime | None = None
    metadata: Metadata = ()
    moves_money: ClassVar[bool] = True

    @property
    def user_ids(self) -> tuple[int, ...]:
        return (self.user_id,)

    @property
    def order_ids(self) -> tuple[int, ...]:
        return (self.order_id,)

    def canonical(self) -> tuple[object, ...]:
        form: tuple[object, ...] = (
            "reserve",
            1,
            self.user_id,
            self.service_id,
            self.order_id,
            self.amount.kopecks,
            self.description or "",
        )
        if self.expires_at is not None:
            form = (*form, self.expires_at.astimezone(UTC).isoformat())
        return tagged(form, self.metadata)

    def legacy(self) -> str | None:
        if self.expires_at is not None or self.metadata:
            return None  # 8b1b5a2 had no expiring holds, no metadata
        return (
            f"reserve:Reserve(user_id={self.user_id}, service_id={self.service_id},"
            f" order_id={self.order_id}, amount={legacy_money(self.amount)},"
            f" description={self.description or None!r})"
        )


def reserve(cmd: Reserve, uow: Movement) -> ReservationResult:
    existing = uow.reservations.get(cmd.order_id)
    if existing is not None:
        return _repeat(existing, cmd, uow)
    Reservation.check_expiry(cmd.expires_at, uow.now)
    account = lock_account(uow, cmd.user_id)
    postings = account.reserve(cmd.amount)
    uow.accounts.save(account)
    recorded = uow.journal.record(
        JournalTransaction(
            TransactionKind.RESERVE,
            postings,
            cmd.description,
            user_id=cmd.user_id,
            service_id=cmd.service_id,
            order_id=cmd.order_id,
            metadata=cmd.metadata,
        )
    )
    reservation = Reservation(
        cmd.order_id,
        cmd.user_id,
        cmd.service_id,
        cmd.amount,
        created_at=recorded.created_at,
        expires_at=cmd.expires_at,
        metadata=cmd.metadata,
    )
    uow.reservations.add(reservation)
    return ReservationResult(reservation, Balance.of(account), True, cmd.metadata)


def _repeat(existing: Reservation, cmd: Reserve, uow: Movement) -> ReservationResult:
    """An order is reserved once: the same request again answers with what it did."""
    if not existing.is_same_order(cmd.user_id, cmd.service_id, cmd.amount):
        raise OrderAlreadyUsed(cmd.order_id)
    if existing.status is ReservationStatus.EXPIRED:
        raise ReservationExpired(cmd.order_id)
    account = uow.accounts.get(existing.user_id)
    if account is None:  # pragma: no cover - a reservation always has an account
        raise UserNotFound(existing.user_id)
    return ReservationResult(existing, Balance.of(account), False, cmd.metadata)
