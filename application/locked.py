"""What a money use case works on: the rows its batch locked, as one command sees them.

A batch locks every row its commands name, then applies the commands one after
another in memory. Each command works on copies (`Movement`); only when it
succeeds does `merge()` hand its changes to the batch (`BatchState`), so a refused
command leaves the batch exactly as it found it. Nothing here talks to a database:
the batch's store writes `BatchState.changes()` in one go.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from application.ports import (
    Changes,
    IdempotencyRecord,
    Locked,
    RecordedTransaction,
    Stamp,
)
from domain.account import UserAccount
from domain.ledger import JournalTransaction
from domain.reservation import Reservation


class BatchState:
    """The locked rows as the commands applied so far left them."""

    def __init__(
        self, locked: Locked, stamp: Stamp, user_ids: Sequence[int], order_ids: Sequence[int]
    ) -> None:
        self.accounts = dict(locked.accounts)
        self.reservations = dict(locked.reservations)
        self.user_ids = frozenset(user_ids)
        self.order_ids = frozenset(order_ids)
        self.created_at = stamp.created_at
        self.transactions: list[tuple[int, JournalTransaction]] = []
        self.answers: dict[str, IdempotencyRecord] = {}
        self._stored_users = frozenset(locked.accounts)
        self._stored_orders = frozenset(locked.reservations)
        self._ids = iter(stamp.transaction_ids)
        self._saved: set[int] = set()
        self._closed: set[int] = set()

    def next_transaction_id(self) -> int:
        return next(self._ids)

    def saved(self, accounts: dict[int, UserAccount]) -> None:
        self.accounts.update(accounts)
        self._saved.update(accounts)

    def changed(self, reservations: dict[int, Reservation]) -> None:
        self.reservations.update(reservations)
        self._closed.update(reservations)

    def changes(self) -> Changes:
        accounts = [self.accounts[user_id] for user_id in sorted(self._saved)]
        touched = [self.reservations[order_id] for order_id in sorted(self._closed)]
        return Changes(
            opened=[a for a in accounts if a.user_id not in self._stored_users],
            saved=[a for a in accounts if a.user_id in self._stored_users],
            transactions=self.transactions,
            added=[r for r in touched if r.order_id not in self._stored_orders],
            closed=[r for r in touched if r.order_id in self._stored_orders],
            answers=self.answers,
        )


class LockedAccounts:
    def __init__(self, state: BatchState) -> None:
        self._state = state
        self._changed: dict[int, UserAccount] = {}

    def _current(self, user_id: int) -> UserAccount | None:
        if user_id not in self._state.user_ids:
            raise AssertionError(f"user {user_id} is not locked by this batch")
        return self._changed.get(user_id) or self._state.accounts.get(user_id)

    async def get(self, user_id: int) -> UserAccount | None:
        account = self._current(user_id)
        return dataclasses.replace(account) if account else None

    async def open(self, user_id: int) -> None:
        """The user's accounts, created if this is their first money."""
        if self._current(user_id) is None:
            self._changed[user_id] = UserAccount.open(user_id)

    async def lock(self, user_ids: Sequence[int]) -> dict[int, UserAccount]:
        """The accounts of these users that exist (the batch holds their locks)."""
        found = {user_id: self._current(user_id) for user_id in sorted(set(user_ids))}
        return {uid: dataclasses.replace(a) for uid, a in found.items() if a is not None}

    async def save(self, account: UserAccount) -> None:
        self._changed[account.user_id] = dataclasses.replace(account)

    def holds(self, user_id: int) -> bool:
        """Whether the batch locked this user's row."""
        return user_id in self._state.user_ids

    def merge(self) -> None:
        self._state.saved(self._changed)


class LockedReservations:
    def __init__(self, state: BatchState) -> None:
        self._state = state
        self._changed: dict[int, Reservation] = {}

    def _current(self, order_id: int) -> Reservation | None:
        if order_id not in self._state.order_ids:
            raise AssertionError(f"order {order_id} is not locked by this batch")
        return self._changed.get(order_id) or self._state.reservations.get(order_id)

    async def get(self, order_id: int) -> Reservation | None:
        found = self._current(order_id)
        return dataclasses.replace(found) if found else None

    async def lock(self, order_id: int) -> Reservation | None:
        return await self.get(order_id)

    async def add(self, reservation: Reservation) -> None:
        if self._current(reservation.order_id) is not None:
            raise AssertionError(f"order {reservation.order_id} reserved twice")
        self._changed[reservation.order_id] = dataclasses.replace(reservation)

    async def close(self, reservation: Reservation) -> None:
        stored = self._current(reservation.order_id)
        if stored is None or not stored.is_open:
            raise AssertionError(f"order {reservation.order_id} closed twice")
        self._changed[reservation.order_id] = dataclasses.replace(reservation)

    def merge(self) -> None:
        self._state.changed(self._changed)


class BatchJournal:
    def __init__(self, state: BatchState) -> None:
        self._state = state
        self._recorded: list[tuple[int, JournalTransaction]] = []

    async def record(self, transaction: JournalTransaction) -> RecordedTransaction:
        transaction_id = self._state.next_transaction_id()
        self._recorded.append((transaction_id, transaction))
        return RecordedTransaction(transaction_id, self._state.created_at)

    def merge(self) -> None:
        self._state.transactions.extend(self._recorded)


class Movement:
    """One command's unit of work inside a batch: reads and writes the batch's locked
    rows, and publishes nothing until `merge()`."""

    def __init__(self, state: BatchState) -> None:
        self.now = state.created_at  # the store's clock, read after the locks
        self.accounts = LockedAccounts(state)
        self.reservations = LockedReservations(state)
        self.journal = BatchJournal(state)

    def merge(self) -> None:
        self.accounts.merge()
        self.reservations.merge()
        self.journal.merge()
