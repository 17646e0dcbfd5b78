"""Money held for one order: it ends once, cancelled or recognized, never both."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from domain.errors import (
    RecognitionExceedsReservation,
    ReservationAlreadyClosed,
    ReservationMismatch,
)
from domain.money import Money


class ReservationStatus(Enum):
    RESERVED = "reserved"
    CANCELLED = "cancelled"
    RECOGNIZED = "recognized"


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

    def _ensure_open(self) -> None:
        if not self.is_open:
            raise ReservationAlreadyClosed(self.order_id, self.status.value)
