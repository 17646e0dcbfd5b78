from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from application.ports import UnitOfWork
from application.results import Balance
from domain.errors import UserNotFound
from domain.money import Money


async def get_balance(
    user_id: int, units: Callable[[], UnitOfWork], as_of: datetime | None = None
) -> Balance:
    """Current balances, or those after the last entry at or before `as_of`."""
    async with units() as uow:
        account = await uow.accounts.get(user_id)
        if account is not None and as_of is not None:
            available, reserved = await uow.statements.balances_at(user_id, as_of)
            return Balance(user_id, Money(available), Money(reserved))
    if account is None:
        raise UserNotFound(user_id)
    return Balance.of(account)
