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
class Deposit:
    """Money paid in from outside (a payment gateway) to a user's available balance."""

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
        form = ("deposit", 1, self.user_id, self.amount.kopecks, self.description or "")
        return tagged(form, self.metadata)

    def legacy(self) -> str | None:
        if self.metadata:
            return None
        return (
            f"deposit:Deposit(user_id={self.user_id}, amount={legacy_money(self.amount)},"
            f" description={self.description or None!r})"
        )


def deposit(cmd: Deposit, uow: Movement) -> MovementResult:
    uow.accounts.open(cmd.user_id)
    account = lock_account(uow, cmd.user_id)
    credit = account.credit(cmd.amount, EntryKind.DEPOSIT)
    source = Posting(AccountRef.external(), EntryKind.DEPOSIT, -cmd.amount, None)
    uow.accounts.save(account)
    recorded = uow.journal.record(
        JournalTransaction(
            TransactionKind.DEPOSIT,
            (source, credit),
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
