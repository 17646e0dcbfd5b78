"""A user's two balances, money they can spend and money held for their orders, and
the rules for spending: how far below zero `available` may go, and whether the
account is frozen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.errors import AccountFrozen, BalanceLimit, InsufficientFunds, InvalidLimit
from domain.ledger import AccountRef, EntryKind, Posting
from domain.money import MAX_AMOUNT_KOPECKS, MAX_BALANCE_KOPECKS, Money

_ZERO = Money(0)


@dataclass(slots=True)
class UserAccount:
    user_id: int
    available: Money
    reserved: Money
    credit_limit: Money = _ZERO
    """How far below zero `available` may go (0: never below zero)."""
    frozen: bool = False
    """Frozen: every debit is refused; credits and the closing of holds still apply."""
    limits_changed_at: datetime | None = None
    tolerated_debt: Money = _ZERO
    """The debt of the day a limit was lowered below it: allowed to stand, not to grow
    (the database's last line of defence checks against the larger of the two)."""
    event_seq: int = 0
    """The user_seq of the account's last event (each movement or limit change of the
    user is one): the next is event_seq + 1."""

    @classmethod
    def open(cls, user_id: int) -> UserAccount:
        return cls(user_id, _ZERO, _ZERO)

    def copy(self) -> UserAccount:
        return UserAccount(
            self.user_id,
            self.available,
            self.reserved,
            self.credit_limit,
            self.frozen,
            self.limits_changed_at,
            self.tolerated_debt,
            self.event_seq,
        )

    def set_limits(self, credit_limit: Money, frozen: bool, at: datetime) -> None:
        """A limit below today's debt is allowed: it refuses further debits."""
        if not 0 <= credit_limit.kopecks <= MAX_AMOUNT_KOPECKS:
            raise InvalidLimit("must be from 0 to 10000000000000.00")
        self.credit_limit, self.frozen, self.limits_changed_at = credit_limit, frozen, at
        debt = -self.available.kopecks
        self.tolerated_debt = Money(debt) if debt > credit_limit.kopecks else _ZERO

    @property
    def total(self) -> Money:
        return self.available + self.reserved

    def credit(self, amount: Money, kind: EntryKind) -> Posting:
        """Money in from outside the account: up to the most one account holds."""
        balance = self.available.kopecks + self.reserved.kopecks
        if balance + amount.kopecks > MAX_BALANCE_KOPECKS:
            raise BalanceLimit(self.user_id, balance, amount.kopecks, MAX_BALANCE_KOPECKS)
        return self._add_available(amount, kind)

    def _add_available(self, amount: Money, kind: EntryKind) -> Posting:
        self.available += amount
        return Posting(AccountRef.available(self.user_id), kind, amount, self.available)

    def debit(self, amount: Money, kind: EntryKind) -> Posting:
        self._ensure_available(amount)
        self.available -= amount
        return Posting(AccountRef.available(self.user_id), kind, -amount, self.available)

    def reserve(self, amount: Money) -> tuple[Posting, Posting]:
        """Move money from available to reserved, to hold it for an order."""
        debit = self.debit(amount, EntryKind.RESERVE)
        self.reserved += amount
        hold = Posting(AccountRef.reserved(self.user_id), EntryKind.RESERVE, amount, self.reserved)
        return debit, hold

    def release(self, amount: Money, kind: EntryKind) -> tuple[Posting, Posting]:
        """Give held money back to available (a cancel, or the unrecognized rest)."""
        out = self._take_reserved(amount, kind)
        return out, self._add_available(amount, kind)  # the balance stays as it was

    def settle(self, amount: Money) -> Posting:
        """Take held money out of the user's hands: it becomes the company's revenue."""
        return self._take_reserved(amount, EntryKind.RECOGNIZE)

    def _take_reserved(self, amount: Money, kind: EntryKind) -> Posting:
        if amount > self.reserved:
            # Reserved always equals the sum of open reservations; reaching this is a bug.
            raise AssertionError(f"user {self.user_id} holds less than {amount}")
        self.reserved -= amount
        return Posting(AccountRef.reserved(self.user_id), kind, -amount, self.reserved)

    def _ensure_available(self, amount: Money) -> None:
        """Reserved money is not available: a hold counts against the limit."""
        if self.frozen:
            raise AccountFrozen(self.user_id)
        if (self.available - amount).kopecks < -self.credit_limit.kopecks:
            raise InsufficientFunds(
                self.user_id, self.available.kopecks, amount.kopecks, self.credit_limit.kopecks
            )
