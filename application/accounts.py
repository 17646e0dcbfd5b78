"""Helpers the money use cases share: locking the accounts they move."""

from __future__ import annotations

from application.locked import Movement
from domain.account import UserAccount
from domain.errors import UserNotFound


def lock_account(uow: Movement, user_id: int) -> UserAccount:
    accounts = uow.accounts.lock([user_id])
    if user_id not in accounts:
        raise UserNotFound(user_id)
    return accounts[user_id]
