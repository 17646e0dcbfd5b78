"""A multi-leg movement: one ledger transaction moving money between several users at
once, each leg a signed amount on a user's available balance, the legs summing to
zero (a transfer is its two-leg case)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.errors import InvalidMovement
from domain.money import Money

MIN_LEGS, MAX_LEGS = 2, 100


@dataclass(frozen=True, slots=True)
class Leg:
    user_id: int
    amount: Money
    """Signed: negative leaves the user (a debit), positive arrives (a credit)."""

    @property
    def is_debit(self) -> bool:
        return self.amount.kopecks < 0


def check_legs(legs: Sequence[Leg]) -> None:
    """2..100 legs, none zero, a user at most once, summing to exactly zero."""
    if not MIN_LEGS <= len(legs) <= MAX_LEGS:
        raise InvalidMovement("legs", f"must be {MIN_LEGS} to {MAX_LEGS} legs, got {len(legs)}")
    seen: set[int] = set()
    for index, leg in enumerate(legs):
        if not leg.amount.kopecks:
            raise InvalidMovement(f"legs[{index}].amount", "must not be zero")
        if leg.user_id in seen:
            raise InvalidMovement(f"legs[{index}].user_id", "names a user another leg names")
        seen.add(leg.user_id)
    total = Money(sum(leg.amount.kopecks for leg in legs))
    if total.kopecks:
        raise InvalidMovement("legs", f"amounts must sum to 0.00, they sum to {total.to_rubles()}")
