"""What a money use case works on: the rows its batch locked, as one command sees them.

A batch locks every row its requests name, then applies them one after another in
memory, with no I/O. The state is layered: the batch's rows (`BatchState`), a
request's changes over them, a command's changes over its request's. A layer is
merged into the one below only when what it did is kept, so a refused command,
or a refused atomic request, leaves everything below exactly as it found it. The
batch's store then writes `BatchState.changes()` in one go.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from application.events import Happening, events_of
from application.ports import Changes, IdempotencyRecord, Locked, RecordedTransaction
from domain.account import UserAccount
from domain.ledger import JournalTransaction
from domain.reservation import Reservation


class Layer:
    """Changes over the layer below: rows changed, transactions recorded, answers stored."""

    __slots__ = ("_below", "accounts", "answers", "log", "reservations")
    _below: Layer

    def __init__(self, below: Layer | None) -> None:
        """`below`: where this layer's changes go when kept; None for the batch's own
        state, which answers from the locked rows. (Not itself: a layer that points at
        itself is a cycle, and a cycle keeps a whole batch, every account, posting and
        answer of it, alive until the collector finds it.)"""
        if below is not None:
            self._below = below
        self.accounts: dict[int, UserAccount] = {}
        self.reservations: dict[int, Reservation] = {}
        self.log: list[Happening] = []
        """Transactions recorded and limits set, in order, with their request's key and
        caller."""
        self.answers: dict[str, IdempotencyRecord] = {}

    @property
    def now(self) -> datetime:
        return self._below.now

    def locks(self, user_id: int) -> bool:
        return self._below.locks(user_id)

    def names(self, order_id: int) -> bool:
        return self._below.names(order_id)

    def next_transaction_id(self) -> int:
        return self._below.next_transaction_id()

    def account(self, user_id: int) -> UserAccount | None:
        found = self.accounts.get(user_id)
        return found if found is not None else self._below.account(user_id)

    def reservation(self, order_id: int) -> Reservation | None:
        found = self.reservations.get(order_id)
        return found if found is not None else self._below.reservation(order_id)

    def answer(self, key: str) -> IdempotencyRecord | None:
        found = self.answers.get(key)
        return found if found is not None else self._below.answer(key)

    def merge(self) -> None:
        """Keep what this layer did: hand it to the layer below."""
        below = self._below
        below.accounts.update(self.accounts)
        below.reservations.update(self.reservations)
        below.log.extend(self.log)
        below.answers.update(self.answers)


class BatchState(Layer):
    """The bottom layer: the locked rows as read, and what the batch kept of its requests."""

    __slots__ = ("_ids", "_locked", "_order_ids", "_user_ids")

    def __init__(self, locked: Locked, user_ids: Iterable[int], order_ids: Iterable[int]) -> None:
        super().__init__(None)
        self._locked = locked
        self._user_ids = frozenset(user_ids)
        self._order_ids = frozenset(order_ids)
        self._ids: Iterator[int] = iter(locked.transaction_ids)

    @property
    def now(self) -> datetime:
        return self._locked.now

    def locks(self, user_id: int) -> bool:
        return user_id in self._user_ids

    def names(self, order_id: int) -> bool:
        return order_id in self._order_ids

    def next_transaction_id(self) -> int:
        return next(self._ids)

    def account(self, user_id: int) -> UserAccount | None:
        found = self.accounts.get(user_id)
        return found if found is not None else self._locked.accounts.get(user_id)

    def reservation(self, order_id: int) -> Reservation | None:
        found = self.reservations.get(order_id)
        return found if found is not None else self._locked.reservations.get(order_id)

    def answer(self, key: str) -> IdempotencyRecord | None:
        found = self.answers.get(key)
        return found if found is not None else self._locked.answers.get(key)

    def merge(self) -> None:
        raise AssertionError("the batch's own state has nothing below it")

    def changes(self) -> Changes:
        stored_users, stored_orders = self._locked.accounts, self._locked.reservations
        accounts = [self.accounts[user_id] for user_id in sorted(self.accounts)]
        touched = [self.reservations[order_id] for order_id in sorted(self.reservations)]
        log = self.log
        events = events_of(log, stored_users, self.accounts) if log else []
        return Changes(
            opened=[a for a in accounts if a.user_id not in stored_users],
            saved=[a for a in accounts if a.user_id in stored_users],
            transactions=[
                (i, tx, caller) for i, tx, _, caller in log if isinstance(tx, JournalTransaction)
            ],
            events=events,
            added=[r for r in touched if r.order_id not in stored_orders],
            closed=[r for r in touched if r.order_id in stored_orders],
            answers=self.answers,
            created_at=self.now,
        )


class LockedAccounts:
    __slots__ = ("_layer",)

    def __init__(self, layer: Layer) -> None:
        self._layer = layer

    def _current(self, user_id: int) -> UserAccount | None:
        if not self._layer.locks(user_id):
            raise AssertionError(f"user {user_id} is not locked by this batch")
        return self._layer.account(user_id)

    def get(self, user_id: int) -> UserAccount | None:
        account = self._current(user_id)
        return account.copy() if account else None

    def open(self, user_id: int) -> None:
        """The user's accounts, created if this is their first money."""
        if self._current(user_id) is None:
            self._layer.accounts[user_id] = UserAccount.open(user_id)

    def lock(self, user_ids: Iterable[int]) -> dict[int, UserAccount]:
        """The accounts of these users that exist (the batch holds their locks)."""
        found = {user_id: self._current(user_id) for user_id in sorted(set(user_ids))}
        return {uid: a.copy() for uid, a in found.items() if a is not None}

    def save(self, account: UserAccount) -> None:
        """Keep the account as it is now: it is handed over (not to be changed after)."""
        self._layer.accounts[account.user_id] = account

    def holds(self, user_id: int) -> bool:
        """Whether the batch locked this user's row."""
        return self._layer.locks(user_id)


class LockedReservations:
    __slots__ = ("_layer",)

    def __init__(self, layer: Layer) -> None:
        self._layer = layer

    def _current(self, order_id: int) -> Reservation | None:
        if not self._layer.names(order_id):
            raise AssertionError(f"order {order_id} is not locked by this batch")
        return self._layer.reservation(order_id)

    def get(self, order_id: int) -> Reservation | None:
        found = self._current(order_id)
        return found.copy() if found else None

    def add(self, reservation: Reservation) -> None:
        if self._current(reservation.order_id) is not None:
            raise AssertionError(f"order {reservation.order_id} reserved twice")
        self._layer.reservations[reservation.order_id] = reservation

    def close(self, reservation: Reservation) -> None:
        stored = self._current(reservation.order_id)
        if stored is None or not stored.is_open:
            raise AssertionError(f"order {reservation.order_id} closed twice")
        self._layer.reservations[reservation.order_id] = reservation


class BatchJournal:
    __slots__ = ("_caller", "_key", "_layer")

    def __init__(self, layer: Layer, key: str | None, caller: str | None) -> None:
        self._layer = layer
        self._key = key
        self._caller = caller

    def record(self, transaction: JournalTransaction) -> RecordedTransaction:
        transaction_id = self._layer.next_transaction_id()
        self._layer.log.append((transaction_id, transaction, self._key, self._caller))
        return RecordedTransaction(transaction_id, self._layer.now)

    def limits_set(self, account: UserAccount) -> None:
        """A limit change moves no money but is an event of its own."""
        self._layer.log.append((0, account.copy(), self._key, self._caller))


class Movement:
    """One command's unit of work inside a batch: reads and writes the batch's locked
    rows, and hands nothing below until `merge()`."""

    __slots__ = ("_layer", "accounts", "journal", "now", "reservations")

    def __init__(self, below: Layer, key: str | None = None, caller: str | None = None) -> None:
        """`key`: the Idempotency-Key the command came under, which its events carry;
        `caller`: the name of who sent it, which its transactions and events carry (None:
        unnamed, or the service's own doing, as an expiry)."""
        self._layer = layer = Layer(below)
        self.now = below.now  # the store's clock, read after the locks
        self.accounts = LockedAccounts(layer)
        self.reservations = LockedReservations(layer)
        self.journal = BatchJournal(layer, key, caller)

    def answered(self, key: str, record: IdempotencyRecord) -> None:
        """Store the command's answer under its key, with what it did."""
        self._layer.answers[key] = record

    def merge(self) -> None:
        self._layer.merge()
