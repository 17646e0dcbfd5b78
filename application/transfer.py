from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from application.fingerprint import legacy_money, tagged
from application.locked import Movement
from application.results import Balance, TransferResult
from domain.errors import AccountFrozen, SameUserTransfer, UserNotFound
from domain.ledger import EntryKind, JournalTransaction, Metadata, TransactionKind
from domain.money import Money


@dataclass(frozen=True, slots=True)
class Transfer:
    from_user_id: int
    to_user_id: int
    amount: Money
    description: str | None = None
    metadata: Metadata = ()
    moves_money: ClassVar[bool] = True

    @property
    def user_ids(self) -> tuple[int, ...]:
        return (self.from_user_id, self.to_user_id)

    @property
    def order_ids(self) -> tuple[int, ...]:
        return ()

    def canonical(self) -> tuple[object, ...]:
        form = (
            "transfer",
            1,
            self.from_user_id,
            self.to_user_id,
            self.amount.kopecks,
            self.description or "",
        )
        return tagged(form, self.metadata)

    def legacy(self) -> str | None:
        if self.metadata:
            return None
        return (
            f"transfer:Transfer(from_user_id={self.from_user_id}, to_user_id={self.to_user_id},"
            f" amount={legacy_money(self.amount)}, description={self.description or None!r})"
        )


def transfer(cmd: Transfer, uow: Movement) -> TransferResult:
    if cmd.from_user_id == cmd.to_user_id:
        raise SameUserTransfer(cmd.from_user_id)
    # A user's first money may come by transfer; a refusal rolls this back with the rest.
    uow.accounts.open(cmd.to_user_id)
    accounts = uow.accounts.lock([cmd.from_user_id, cmd.to_user_id])
    if cmd.from_user_id not in accounts:
        raise UserNotFound(cmd.from_user_id, "from_user_id")
    sender, receiver = accounts[cmd.from_user_id], accounts[cmd.to_user_id]
    try:
        debit = sender.debit(cmd.amount, EntryKind.TRANSFER_OUT)
    except AccountFrozen as frozen:
        raise AccountFrozen(frozen.user_id, "from_user_id") from None
    credit = receiver.credit(cmd.amount, EntryKind.TRANSFER_IN)
    uow.accounts.save(sender)
    uow.accounts.save(receiver)
    recorded = uow.journal.record(
        JournalTransaction(
            TransactionKind.TRANSFER,
            (debit, credit),
            cmd.description,
            user_id=cmd.from_user_id,
            counterparty_user_id=cmd.to_user_id,
            metadata=cmd.metadata,
        )
    )
    return TransferResult(
        recorded.transaction_id,
        cmd.from_user_id,
        cmd.to_user_id,
        cmd.amount,
        Balance.of(sender),
        Balance.of(receiver),
        recorded.created_at,
        cmd.metadata,
    )
