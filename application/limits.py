"""A user's credit limit and freeze, set under the user's lock like any debit, so a
limit change and a debit of the same user never race."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from application.locked import Movement
from application.ports import UnitOfWork
from application.results import LimitsResult
from domain.errors import UserNotFound
from domain.money import Money


@dataclass(frozen=True, slots=True)
class SetLimits:
    """How far below zero a user's available balance may go, and whether debits stop."""

    user_id: int
    credit_limit: Money
    frozen: bool
    moves_money: ClassVar[bool] = False

    @property
    def user_ids(self) -> tuple[int, ...]:
        return (self.user_id,)

    @property
    def order_ids(self) -> tuple[int, ...]:
        return ()

    def canonical(self) -> tuple[object, ...]:
        return ("limits", 1, self.user_id, self.credit_limit.kopecks, self.frozen)

    def legacy(self) -> None:
        return None


def set_limits(cmd: SetLimits, uow: Movement) -> LimitsResult:
    """A user with no account yet gets one, with a zero balance."""
    uow.accounts.open(cmd.user_id)
    account = uow.accounts.lock([cmd.user_id])[cmd.user_id]
    account.set_limits(cmd.credit_limit, cmd.frozen, uow.now)
    uow.journal.limits_set(account)
    uow.accounts.save(account)
    return LimitsResult.of(account, uow.now)


async def get_limits(units: Callable[[], UnitOfWork], user_id: int) -> LimitsResult:
    async with units() as uow:
        found = await uow.accounts.opened(user_id)
    if found is None:
        raise UserNotFound(user_id)
    account, opened_at = found
    return LimitsResult.of(account, opened_at)
