"""Reads the whole ledger of either adapter, so invariants are checked the same way on both."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import asyncpg

from adapters.memory.store import InMemoryStore


@dataclass(frozen=True, slots=True)
class EntryRow:
    entry_id: int
    transaction_id: int
    account: str
    kind: str
    user_id: int | None
    service_id: int | None
    amount: int
    balance_after: int | None


@dataclass(frozen=True, slots=True)
class ReservationRow:
    order_id: int
    user_id: int
    service_id: int
    amount: int
    status: str
    recognized_amount: int | None


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    accounts: dict[int, tuple[int, int]]
    entries: list[EntryRow]
    reservations: list[ReservationRow]
    idempotency_keys: int
    limits: dict[int, tuple[int, bool, int]] = field(default_factory=dict)
    """user -> (credit limit, frozen, tolerated debt), in kopecks."""
    transaction_ids: frozenset[int] = frozenset()
    """Every recorded transaction's id."""


class LedgerView(Protocol):
    async def snapshot(self) -> LedgerSnapshot: ...


class MemoryLedgerView(LedgerView):
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    async def snapshot(self) -> LedgerSnapshot:
        return self.read()

    def read(self) -> LedgerSnapshot:
        entries = []
        entry_id = 0
        for transaction_id, transaction, _, _ in self._store.transactions:
            for p in transaction.postings:
                entry_id += 1
                entries.append(
                    EntryRow(
                        entry_id,
                        transaction_id,
                        p.account.kind.value,
                        p.kind.value,
                        p.account.user_id,
                        p.account.service_id,
                        p.amount.kopecks,
                        p.balance_after.kopecks if p.balance_after is not None else None,
                    )
                )
        return LedgerSnapshot(
            {u: (a.available.kopecks, a.reserved.kopecks) for u, a in self._store.accounts.items()},
            entries,
            [
                ReservationRow(
                    r.order_id,
                    r.user_id,
                    r.service_id,
                    r.amount.kopecks,
                    r.status.value,
                    r.recognized_amount.kopecks if r.recognized_amount else None,
                )
                for r in self._store.reservations.values()
            ],
            len(self._store.idempotency),
            {
                u: (a.credit_limit.kopecks, a.frozen, a.tolerated_debt.kopecks)
                for u, a in self._store.accounts.items()
            },
            frozenset(transaction_id for transaction_id, *_ in self._store.transactions),
        )


class PostgresLedgerView(LedgerView):
    def __init__(self, url: str) -> None:
        self._url = url

    async def snapshot(self) -> LedgerSnapshot:
        db = await asyncpg.connect(self._url)
        try:
            async with db.transaction(isolation="repeatable_read", readonly=True):
                accounts = await db.fetch(
                    "SELECT user_id, available, reserved, credit_limit, frozen, tolerated_debt"
                    " FROM accounts"
                )
                entries = await db.fetch(
                    "SELECT id, transaction_id, account, kind, user_id, service_id, amount,"
                    " balance_after FROM entries ORDER BY id"
                )
                reservations = await db.fetch(
                    "SELECT order_id, user_id, service_id, amount, status, recognized_amount"
                    " FROM reservations"
                )
                keys = await db.fetchval("SELECT count(*) FROM idempotency_keys")
                transactions = await db.fetch("SELECT id FROM transactions")
        finally:
            await db.close()
        return LedgerSnapshot(
            {r["user_id"]: (r["available"], r["reserved"]) for r in accounts},
            [EntryRow(*r.values()) for r in entries],
            [ReservationRow(*r.values()) for r in reservations],
            keys,
            {r["user_id"]: (r["credit_limit"], r["frozen"], r["tolerated_debt"]) for r in accounts},
            frozenset(r["id"] for r in transactions),
        )


def check_invariants(ledger: LedgerSnapshot) -> None:
    """ARCHITECTURE.md's invariants 1-5, from the stored ledger alone."""
    # 1. Double entry: every transaction, and so the whole ledger, sums to zero.
    per_transaction: dict[int, int] = {}
    for e in ledger.entries:
        per_transaction[e.transaction_id] = per_transaction.get(e.transaction_id, 0) + e.amount
    assert all(total == 0 for total in per_transaction.values()), per_transaction
    # Every entry's transaction is recorded, and every transaction has entries (no
    # foreign key checks the first: one statement writes both, migration 0011).
    assert per_transaction.keys() == ledger.transaction_ids, (
        sorted(per_transaction.keys() - ledger.transaction_ids),
        sorted(ledger.transaction_ids - per_transaction.keys()),
    )
    # 2. No balance below zero, but available down to the user's credit limit (or the
    # debt of the day the limit was lowered below it, which may stand, not grow).
    for user_id, (available, reserved) in ledger.accounts.items():
        limit, _, tolerated = ledger.limits.get(user_id, (0, False, 0))
        assert available >= -max(limit, tolerated), (user_id, available, limit, tolerated)
        assert reserved >= 0, (user_id, reserved)
    # 3. Reserved equals the sum of open reservations.
    open_sums: dict[int, int] = {}
    for r in ledger.reservations:
        if r.status == "reserved":
            open_sums[r.user_id] = open_sums.get(r.user_id, 0) + r.amount
    for user_id, (_, reserved) in ledger.accounts.items():
        assert reserved == open_sums.get(user_id, 0), (user_id, reserved, open_sums)
    # 5. Replaying each user's entries rebuilds every balance_after and the final balances.
    replay: dict[tuple[int, str], int] = {}
    for e in sorted(ledger.entries, key=lambda e: e.entry_id):
        if e.account in ("available", "reserved"):
            assert e.user_id is not None
            key = (e.user_id, e.account)
            replay[key] = replay.get(key, 0) + e.amount
            assert replay[key] == e.balance_after, (e, replay[key])
    for user_id, (available, reserved) in ledger.accounts.items():
        assert replay.get((user_id, "available"), 0) == available
        assert replay.get((user_id, "reserved"), 0) == reserved
    # 4. A closed reservation was closed once: one closing transaction per order.
    closings: dict[int, int] = {}
    for e in ledger.entries:
        if e.account == "reserved" and e.kind in ("cancel", "recognize", "expire") and e.amount < 0:
            closings[e.transaction_id] = 1
    assert len(closings) == sum(1 for r in ledger.reservations if r.status != "reserved")
