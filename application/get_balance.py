from __future__ import annotations

from application.ports import UnitOfWork
from application.results import Balance
from domain.errors import UserNotFound


async def get_balance(user_id: int, uow: UnitOfWork) -> Balance:
    async with uow:
        account = await uow.accounts.get(user_id)
    if account is None:
        raise UserNotFound(user_id)
    return Balance.of(account)
