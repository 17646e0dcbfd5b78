"""Money held for one order: it ends once, cancelled or recognized, never both."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from domain.errors import (
    InvalidExpiry,
    RecognitionExceedsReservation,
    ReservationAlreadyClosed,
    ReservationExpired,
    ReservationMismatch,
)
from domain.ledger import Metadata
from domain.money import Money

LONGEST_HOLD = timedelta(days=90)


class ReservationStatus(StrEnum):
    RESERVED = "reserved"
    CANCELLED = "cancelled"
    RECOGNIZED = "recognized"
    EXPIRED = "expired"


@dataclass(slots=True)
class Reservation:
    order_id: int
    user_id: int
    service_id: int
    amount: Money
    status: ReservationStatus = ReservationStatus.RESERVED
    recognized_amount: Money | None = None
    created_at: datetime | None = None
    closed_at: datetime | None = None
    expires_at: datetime | None = None
    metadata: Metadata = ()
    """The pairs the reserving request carried."""

    def copy(self) -> Reservation:
        return Reservation(
            self.order_id,
            self.user_id,
            self.service_id,
            self.amount,
            self.status,
            self.recognized_amount,
            self.created_at,
            self.closed_at,
            self.expires_at,
            self.metadata,
        )

    @staticmethod
    def check_expiry(expires_at: datetime | None, now: datetime) -> None:
        """A hold ends in the future, and at most 90 days from now."""
        if expires_at is None:
            return
        if expires_at <= now:
            raise InvalidExpiry("must be in the future")
        if expires_at > now + LONGEST_HOLD:
            raise InvalidExpiry("must be at most 90 days ahead")

    def is_due(self, now: datetime) -> bool:
        """Open, with an expiry at or before `now`: its money goes back."""
        return self.is_open and self.expires_at is not None and self.expires_at <= now

    @property
    def is_open(self) -> bool:
        return self.status is ReservationStatus.RESERVED

    def is_same_order(self, user_id: int, service_id: int, amount: Money) -> bool:
        return (self.user_id, self.service_id, self.amount) == (user_id, service_id, amount)

    def check_party(self, user_id: int, service_id: int) -> None:
        if user_id != self.user_id:
            raise ReservationMismatch(self.order_id, "user_id")
        if service_id != self.service_id:
            raise ReservationMismatch(self.order_id, "service_id")

    def is_recognized_as(self, amount: Money) -> bool:
        return self.status is ReservationStatus.RECOGNIZED and self.recognized_amount == amount

    def recognize(self, amount: Money) -> Money:
        """Close as revenue; returns the unrecognized rest, which goes back to the user."""
        self._ensure_open()
        if amount > self.amount:
            raise RecognitionExceedsReservation(self.order_id, self.amount.kopecks, amount.kopecks)
        self.status = ReservationStatus.RECOGNIZED
        self.recognized_amount = amount
        return self.amount - amount

    def cancel(self) -> Money:
        """Close without revenue; returns the amount that goes back to the user."""
        self._ensure_open()
        self.status = ReservationStatus.CANCELLED
        return self.amount

    def expire(self) -> Money:
        """Close because the hold ran out; returns the amount that goes back to the user."""
        self._ensure_open()
        self.status = ReservationStatus.EXPIRED
        return self.amount

    def _ensure_open(self) -> None:
        if self.status is ReservationStatus.EXPIRED:
            raise ReservationExpired(self.order_id)
        if not self.is_open:
            raise ReservationAlreadyClosed(self.order_id, self.status.value)
