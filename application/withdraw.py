from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from application.accounts import lock_account
from application.fingerprint import legacy_money, tagged
from application.locked import Movement
from application.results import Balance, MovementResult
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
class Withdraw:
    """Money paid out of a user's available balance to the outside world."""

    user_id: int
    amount: Money
    description: str | None = None
    metadata: Metadata = ()
    moves_money: ClassVar[bool] = True

    @property
    def user_ids(self) -> tuple[int, ...]:
        return (self.user_id,)

    @property
    def order_ids(self) -> tuple[int, ...]:
        return ()

    def canonical(self) -> tuple[object, ...]:
        form = ("withdraw", 1, self.user_id, self.amount.kopecks, self.description or "")
        return tagged(form, self.metadata)

    def legacy(self) -> str | None:
        if self.metadata:
            return None
        return (
            f"withdraw:Withdraw(user_id={self.user_id}, amount={legacy_money(self.amount)},"
            f" description={self.description or None!r})"
        )


def withdraw(cmd: Withdraw, uow: Movement) -> MovementResult:
    account = lock_account(uow, cmd.user_id)
    debit = account.debit(cmd.amount, EntryKind.WITHDRAWAL)
    payout = Posting(AccountRef.external(), EntryKind.WITHDRAWAL, cmd.amount, None)
    uow.accounts.save(account)
    recorded = uow.journal.record(
        JournalTransaction(
            TransactionKind.WITHDRAWAL,
            (debit, payout),
            cmd.description,
            user_id=cmd.user_id,
            metadata=cmd.metadata,
        )
    )
    return MovementResult(
        recorded.transaction_id,
        cmd.user_id,
        cmd.amount,
        Balance.of(account),
        recorded.created_at,
        cmd.metadata,
    )
