"""The double-entry journal: every movement is one transaction whose entries sum to zero."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.errors import UnbalancedTransaction
from domain.money import Money


# The kinds are StrEnums: a member is its value's text, and goes into a row as it is.
class AccountKind(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    REVENUE = "revenue"
    EXTERNAL = "external"


class EntryKind(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"
    RESERVE = "reserve"
    CANCEL = "cancel"
    RECOGNIZE = "recognize"
    RELEASE = "release"
    EXPIRE = "expire"
    MOVEMENT_OUT = "movement_out"
    MOVEMENT_IN = "movement_in"


class TransactionKind(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRANSFER = "transfer"
    RESERVE = "reserve"
    CANCEL = "cancel"
    RECOGNIZE = "recognize"
    EXPIRE = "expire"
    MOVEMENT = "movement"


Metadata = tuple[tuple[str, str], ...]
"""String pairs a client tags a movement with, sorted by key (a key at most once)."""


@dataclass(frozen=True, slots=True)
class AccountRef:
    """Which account an entry moves: a user's available or reserved, or a system account."""

    kind: AccountKind
    user_id: int | None = None
    service_id: int | None = None

    @classmethod
    def available(cls, user_id: int) -> AccountRef:
        return cls(AccountKind.AVAILABLE, user_id=user_id)

    @classmethod
    def reserved(cls, user_id: int) -> AccountRef:
        return cls(AccountKind.RESERVED, user_id=user_id)

    @classmethod
    def revenue(cls, service_id: int) -> AccountRef:
        return cls(AccountKind.REVENUE, service_id=service_id)

    @classmethod
    def external(cls) -> AccountRef:
        return _EXTERNAL


_EXTERNAL = AccountRef(AccountKind.EXTERNAL)  # one: a reference is a value


@dataclass(frozen=True, slots=True)
class Posting:
    """One entry: a signed amount on one account, with that account's balance after it.

    System accounts (revenue, external) keep no balance row, so their
    `balance_after` is None: their balances are sums of entries.
    """

    account: AccountRef
    kind: EntryKind
    amount: Money
    balance_after: Money | None


@dataclass(frozen=True, slots=True)
class JournalTransaction:
    kind: TransactionKind
    postings: tuple[Posting, ...]
    description: str | None = None
    user_id: int | None = None
    counterparty_user_id: int | None = None
    service_id: int | None = None
    order_id: int | None = None
    metadata: Metadata = ()
    """The client's tags: (key, value) pairs, sorted by key."""

    def __post_init__(self) -> None:
        if sum(p.amount.kopecks for p in self.postings) != 0:
            raise UnbalancedTransaction(f"{self.kind.value} entries do not sum to zero")
        if not self.postings:
            raise UnbalancedTransaction(f"{self.kind.value} has no entries")
