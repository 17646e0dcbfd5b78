"""Multi-leg movements: money between several users in one ledger transaction, all or
nothing. Each negative leg is a debit, checked like any other (available balance,
credit limit, freeze); a positive leg to a user with no account opens one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from application.locked import Movement
from application.results import Balance, LegResult, MoveResult
from domain.account import UserAccount
from domain.errors import DomainError, LegRefused, UserNotFound
from domain.ledger import EntryKind, JournalTransaction, Metadata, Posting, TransactionKind
from domain.movement import Leg, check_legs


@dataclass(frozen=True, slots=True)
class Move:
    legs: tuple[Leg, ...]
    description: str | None = None
    metadata: Metadata = ()
    moves_money: ClassVar[bool] = True

    @classmethod
    def of(
        cls, legs: Sequence[Leg], description: str | None = None, metadata: Metadata = ()
    ) -> Move:
        check_legs(legs)
        return cls(tuple(legs), description, metadata)

    @property
    def user_ids(self) -> tuple[int, ...]:
        return tuple(sorted(leg.user_id for leg in self.legs))

    @property
    def order_ids(self) -> tuple[int, ...]:
        return ()

    def canonical(self) -> tuple[object, ...]:
        return (
            "movement",
            1,
            [[leg.user_id, leg.amount.kopecks] for leg in self.legs],
            self.description or "",
            [[key, value] for key, value in self.metadata],
        )

    def legacy(self) -> None:
        return None


def move(cmd: Move, uow: Movement) -> MoveResult:
    for leg in cmd.legs:
        if not leg.is_debit:
            uow.accounts.open(leg.user_id)
    accounts = uow.accounts.lock(leg.user_id for leg in cmd.legs)
    postings = [_posting(index, leg, accounts) for index, leg in enumerate(cmd.legs)]
    for account in accounts.values():
        uow.accounts.save(account)
    recorded = uow.journal.record(
        JournalTransaction(
            TransactionKind.MOVEMENT,
            tuple(postings),
            cmd.description,
            user_id=cmd.legs[0].user_id,
            metadata=cmd.metadata,
        )
    )
    legs = tuple(
        LegResult(leg.user_id, leg.amount, Balance.of(accounts[leg.user_id])) for leg in cmd.legs
    )
    return MoveResult(
        recorded.transaction_id, legs, cmd.description, cmd.metadata, recorded.created_at
    )


def _posting(index: int, leg: Leg, accounts: dict[int, UserAccount]) -> Posting:
    account = accounts.get(leg.user_id)
    try:
        if account is None:
            raise UserNotFound(leg.user_id)  # a positive leg opened its account
        if leg.is_debit:
            return account.debit(-leg.amount, EntryKind.MOVEMENT_OUT)
        return account.credit(leg.amount, EntryKind.MOVEMENT_IN)
    except DomainError as refusal:
        raise LegRefused(index, refusal) from None
