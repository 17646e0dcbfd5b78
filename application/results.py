"""What the use cases answer: the effect, and the balances after it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.account import UserAccount
from domain.ledger import Metadata
from domain.money import Money
from domain.reservation import Reservation


@dataclass(frozen=True, slots=True)
class Balance:
    user_id: int
    available: Money
    reserved: Money

    @property
    def total(self) -> Money:
        return self.available + self.reserved

    @classmethod
    def of(cls, account: UserAccount) -> Balance:
        return cls(account.user_id, account.available, account.reserved)


@dataclass(frozen=True, slots=True)
class MovementResult:
    transaction_id: int
    user_id: int
    amount: Money
    balance: Balance
    created_at: datetime
    metadata: Metadata = ()


@dataclass(frozen=True, slots=True)
class TransferResult:
    transaction_id: int
    from_user_id: int
    to_user_id: int
    amount: Money
    from_balance: Balance
    to_balance: Balance
    created_at: datetime
    metadata: Metadata = ()


@dataclass(frozen=True, slots=True)
class ReservationResult:
    reservation: Reservation
    balance: Balance
    created: bool
    """False when the request repeated one already applied: nothing new was written."""
    metadata: Metadata = ()


@dataclass(frozen=True, slots=True)
class LegResult:
    user_id: int
    amount: Money
    balance: Balance


@dataclass(frozen=True, slots=True)
class MoveResult:
    transaction_id: int
    legs: tuple[LegResult, ...]
    description: str | None
    metadata: Metadata
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LimitsResult:
    user_id: int
    credit_limit: Money
    frozen: bool
    balance: Balance
    updated_at: datetime

    @classmethod
    def of(cls, account: UserAccount, opened_at: datetime) -> LimitsResult:
        """`opened_at`: when the limits were set, if never since the account opened."""
        changed = account.limits_changed_at or opened_at
        return cls(
            account.user_id, account.credit_limit, account.frozen, Balance.of(account), changed
        )


def wrote(result: object) -> bool:
    """Whether a use case's result moved money, or repeated what an earlier one did."""
    return not isinstance(result, ReservationResult) or result.created
