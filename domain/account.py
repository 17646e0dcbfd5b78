"""A user's two balances: money they can spend, and money held for their orders."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import InsufficientFunds
from domain.ledger import AccountRef, EntryKind, Posting
from domain.money import Money


@dataclass(slots=True)
class UserAccount:
    user_id: int
    available: Money
    reserved: Money

    @classmethod
    def open(cls, user_id: int) -> UserAccount:
        return cls(user_id, Money.zero(), Money.zero())

    def copy(self) -> UserAccount:
        return UserAccount(self.user_id, self.available, self.reserved)

    @property
    def total(self) -> Money:
        return self.available + self.reserved

    def credit(self, amount: Money, kind: EntryKind) -> Posting:
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
        return out, self.credit(amount, kind)

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
        if amount > self.available:
            raise InsufficientFunds(self.user_id, self.available.kopecks, amount.kopecks)
