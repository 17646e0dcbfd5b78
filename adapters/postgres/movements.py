"""One batch of money movements, one PostgreSQL transaction, four round trips: BEGIN,
one statement that locks and reads everything the batch needs, one statement that
writes everything, COMMIT.

READ COMMITTED plus row locks: users, then orders, each in ascending id, so two
batches never deadlock. A batch first waits in turn for rows another transaction
holds, as long as a batch holds them (IN_TURN); past that, rows held elsewhere are
skipped and named busy, and the requests that need them wait in a batch of their
own, which first waits for one such row holding nothing else. Rows a batch creates
(a first account, a reservation, an idempotency key) go in with ON CONFLICT DO
NOTHING: if another transaction created one meanwhile, the count tells, nothing is
committed and the batch is run again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from adapters.postgres.errors import LOCK_NOT_AVAILABLE, sqlstate, translate
from adapters.postgres.session import Session
from adapters.postgres.sql import Sql
from adapters.postgres.write_set import (
    Insert,
    Json,
    Update,
    Write,
    WriteSet,
    array_literal,
    metadata_json,
    pairs_of,
)
from application.errors import RequestInProgress, RowsBusy, RowsContended
from application.events import Event
from application.ports import (
    Changes,
    IdempotencyRecord,
    Locked,
    MovementBatch,
    Resource,
    StoredResponse,
)
from domain.account import UserAccount
from domain.ledger import JournalTransaction
from domain.money import Money
from domain.reservation import Reservation, ReservationStatus


class AccountRow(NamedTuple):
    user_id: int
    available: int
    reserved: int
    credit_limit: int
    frozen: bool
    limits_changed_at: datetime | None
    tolerated_debt: int
    event_seq: int


class TransactionRow(NamedTuple):
    id: int
    kind: str
    user_id: int | None
    counterparty_user_id: int | None
    service_id: int | None
    order_id: int | None
    description: str | None
    metadata: Json | None
    caller: str | None


class TagRow(NamedTuple):
    """A statement's filter on metadata finds a user's tagged transactions here."""

    user_id: int
    tag: str
    transaction_id: int


class EntryRow(NamedTuple):
    transaction_id: int
    account: str
    kind: str
    user_id: int | None
    service_id: int | None
    amount: int
    balance_after: int | None


class ReservationRow(NamedTuple):
    order_id: int
    user_id: int
    service_id: int
    amount: int
    status: str
    recognized_amount: int | None
    created_at: datetime | None
    closed_at: datetime | None
    expires_at: datetime | None
    metadata: Json | None


class ReservationEnd(NamedTuple):
    order_id: int
    status: str
    recognized_amount: int | None
    closed_at: datetime | None


class AnswerRow(NamedTuple):
    key: str
    fingerprint: str
    status: int
    body: bytes


RESERVATION_COLUMNS = ", ".join(ReservationRow._fields)
ACCOUNT_COLUMNS = ", ".join(AccountRow._fields)


# The arrays are literals in text parameters, as the write set's (write_set.py).
# Users, then orders (the orders' scan starts once every user is locked), then the
# stamp (its clock and ids are read once every order is locked). Rows another
# transaction holds are skipped, and named busy: of the users it did not lock, those
# that exist; of the orders that exist (most orders a batch names are new: a reserve
# finds none, looks once, locks nothing), those it did not lock.
#
# In turn, a batch waits for those rows instead, each for IN_TURN at most: the lock
# timeout is set for this statement only (set before the first row is read, through
# the users' gate, and set back to what it was in the result, read once every lock
# is taken), so the write and the commit wait as long as any statement may. Every
# row it names that exists, it locks or it fails: nothing to name busy.
#
# The statement also has the batch's write use its generic plan (`plan_cache_mode`,
# for this transaction only). PostgreSQL's plan cache otherwise planned the write anew
# for every small batch (it reckoned from the arrays' sizes that a plan of their own
# was cheaper than the generic one): 0.4-0.5 ms of the server's CPU a batch, as much
# as all the rest of a batch of one deposit (BEGIN, lock, write and COMMIT: 0.5 ms
# with the generic plan). The generic plan is the one a batch wants at any size: an
# index scan per row named.
#
# The transaction ids come from the identity's sequence named as a constant: resolved
# once, when the statement is prepared (`pg_get_serial_sequence` looked the table and
# its column up again for every id, about 3 µs of the server's CPU a movement).
#
# The answers stored under the batch's keys are locked (FOR KEY SHARE: it waits only
# for a key being forgotten, `balance prune-keys`), so that a replay writes WAL and its
# COMMIT waits for the synchronous standby before the answer goes out, as the users'
# locks make it wait: an answer that moved no money, for a user who has no row, locks
# nothing else (session.py: `replicated`).
#
# The batch's time is the clock's, or the latest `updated_at` of the user rows it
# locked if that is later (and the write sets `updated_at` to at least the batch's
# time), so a user's entry times never go back when the server's clock does: a
# failover to a server whose clock is behind, an NTP step (README, decision 10).
_LOCK_SQL = """
    WITH {patience}u AS MATERIALIZED (
        SELECT {accounts}, updated_at FROM accounts
        WHERE user_id = ANY($1::text::bigint[]){gate} ORDER BY user_id FOR UPDATE{skip}
    ), seen AS MATERIALIZED (
        SELECT order_id FROM reservations
        WHERE order_id = ANY($2::text::bigint[]) AND (SELECT count(*) FROM u) >= 0
    ), o AS MATERIALIZED (
        SELECT {reservations} FROM reservations
        WHERE order_id = ANY(ARRAY(SELECT order_id FROM seen))
        ORDER BY order_id FOR UPDATE{skip}
    ), answered AS MATERIALIZED (
        SELECT key, fingerprint, status, body FROM idempotency_keys
        WHERE key = ANY($3::text::text[]) AND status IS NOT NULL FOR KEY SHARE
    ), stamp AS MATERIALIZED (
        SELECT greatest(clock_timestamp(), (SELECT max(updated_at) FROM u)) AS now,
               ARRAY(SELECT nextval('transactions_id_seq'::regclass)
                     FROM generate_series(1, after_the_locks.may_expire
                          + (SELECT count(*) FROM unnest($4::text::text[]) AS m(key)
                             WHERE m.key IS NULL
                                OR m.key NOT IN (SELECT key FROM answered)))) AS ids
        FROM (SELECT count(*) FILTER (WHERE status = 'reserved' AND expires_at IS NOT NULL)
                     AS may_expire FROM o) AS after_the_locks
    )
    SELECT stamp.now, stamp.ids,
           ARRAY(SELECT ROW({accounts}) FROM u) AS users,
           ARRAY(SELECT ROW({reservations}) FROM o) AS orders,
           ARRAY(SELECT ROW(key, fingerprint, status, body) FROM answered) AS answers,
           {busy}{restore},
           set_config('plan_cache_mode', 'force_generic_plan', true) AS generic
    FROM stamp
    """
IN_TURN = "150ms"
"""How long a batch waits in turn for a row: a few times as long as a batch holds its
rows on a busy worker (lock, apply, write, commit); a row held longer belongs to a
transaction that is not a batch's, and the batch runs again without it."""


def _lock_statement(*, in_turn: bool) -> Sql:
    """Skipping the rows held elsewhere, or waiting for them in turn ($5: IN_TURN)."""
    patience = (
        "patience AS MATERIALIZED (SELECT current_setting('lock_timeout') AS was,"
        " set_config('lock_timeout', $5, true) AS became), "
    )
    restore = ",\n           set_config('lock_timeout', (SELECT was FROM patience), true)"
    busy = (
        "'{}'::bigint[] AS busy_users, '{}'::bigint[] AS busy_orders"
        if in_turn
        else "ARRAY(SELECT user_id FROM accounts WHERE user_id = ANY(ARRAY("
        "SELECT unnest($1::text::bigint[]) EXCEPT SELECT user_id FROM u))) AS busy_users,"
        " ARRAY(SELECT order_id FROM seen EXCEPT SELECT order_id FROM o) AS busy_orders"
    )
    text = _LOCK_SQL.format(
        patience=patience if in_turn else "",
        gate=" AND (SELECT was FROM patience) IS NOT NULL" if in_turn else "",
        skip="" if in_turn else " SKIP LOCKED",
        restore=restore if in_turn else "",
        busy=busy,
        accounts=ACCOUNT_COLUMNS,
        reservations=RESERVATION_COLUMNS,
    )
    names = ("users", "orders", "keys", "movements")
    return Sql(text, (*names, "patience") if in_turn else names, {})


_LOCK = _lock_statement(in_turn=False)
_LOCK_IN_TURN = _lock_statement(in_turn=True)
# A batch of requests that found a row held waits for that one row first, holding
# nothing else: it cannot be part of a deadlock, and no one waits behind it but for
# that row.
_WAIT_FOR = {
    "user": Sql("SELECT 1 FROM accounts WHERE user_id = $1 FOR UPDATE", ("id",), {}),
    "order": Sql("SELECT 1 FROM reservations WHERE order_id = $1 FOR UPDATE", ("id",), {}),
}

WRITES = WriteSet(
    Write(
        "saved",
        AccountRow,
        Update(
            "accounts",
            "user_id",
            # Never before the batch's time, nor before what it was: the next batch's
            # time, at least this, keeps the user's entries in order (_LOCK_SQL).
            also="updated_at = greatest(clock_timestamp(), target.updated_at, {created_at})",
            common=("created_at",),
        ),
    ),
    Write("opened", AccountRow, Insert("accounts", if_absent=True)),
    Write(
        "recorded",
        TransactionRow,
        Insert("transactions", given_identity=True, common=("created_at",)),
    ),
    # Entries keep their posting order, so a user's entries replay in id order.
    Write("written", EntryRow, Insert("entries", keep_order=True, common=("created_at",))),
    Write("added", ReservationRow, Insert("reservations", if_absent=True)),
    Write(
        "closed", ReservationEnd, Update("reservations", "order_id", "target.status = 'reserved'")
    ),
    Write("answered", AnswerRow, Insert("idempotency_keys", if_absent=True)),
    Write("tagged", TagRow, Insert("transaction_tags", common=("created_at",))),
    # Last: the counter's lock is the last one a batch takes, held only to its commit
    # (so nothing a batch waits on comes after it: no deadlock through the counter).
    # An event's fields are its row's columns: events are written as they come.
    Write(
        "events",
        Event,
        Insert("events", common=("created_at",), numbered=("event_id", "event_counter")),
    ),
    common={"created_at": "timestamptz"},  # the batch's stamp
)


def rows_of(changes: Changes) -> dict[str, list[Any]]:
    transactions = changes.transactions
    return {
        "saved": [_account(a) for a in changes.saved],
        "opened": [_account(a) for a in changes.opened],
        "recorded": [_transaction(i, tx, caller) for i, tx, caller in transactions],
        "written": [entry for i, tx, _ in transactions for entry in _entries(i, tx)],
        "added": [_reservation(r) for r in changes.added],
        "closed": [
            ReservationEnd(r.order_id, r.status, _kopecks(r.recognized_amount), r.closed_at)
            for r in changes.closed
        ],
        "answered": [
            AnswerRow(key, record.fingerprint, record.response.status, record.response.body)
            for key, record in sorted(changes.answers.items())
        ],
        "tagged": [tag for i, tx, _ in transactions if tx.metadata for tag in _tags(i, tx)],
        "events": changes.events,
    }


def _account(a: UserAccount) -> AccountRow:
    return AccountRow(
        a.user_id,
        a.available.kopecks,
        a.reserved.kopecks,
        a.credit_limit.kopecks,
        a.frozen,
        a.limits_changed_at,
        a.tolerated_debt.kopecks,
        a.event_seq,
    )


def account_of(row: Sequence[Any]) -> UserAccount:
    """An account from its columns in AccountRow's order."""
    user_id, available, reserved, limit, frozen, changed_at, tolerated, event_seq = row[:8]
    return UserAccount(
        user_id,
        _money(available),
        _money(reserved),
        _money(limit),
        frozen,
        changed_at,
        _money(tolerated),
        event_seq,
    )


_ZERO = Money(0)


def _money(kopecks: int) -> Money:
    """Most accounts have no limit, no tolerated debt and nothing held: one zero for all."""
    return Money(kopecks) if kopecks else _ZERO


def _tags(transaction_id: int, tx: JournalTransaction) -> list[TagRow]:
    users = sorted({p.account.user_id for p in tx.postings if p.account.user_id is not None})
    return [
        TagRow(user, f"{key}={value}", transaction_id)
        for user in users
        for key, value in tx.metadata
    ]


def _transaction(transaction_id: int, tx: JournalTransaction, caller: str | None) -> TransactionRow:
    return TransactionRow(
        transaction_id,
        tx.kind,
        tx.user_id,
        tx.counterparty_user_id,
        tx.service_id,
        tx.order_id,
        tx.description,
        metadata_json(tx.metadata),
        caller,
    )


def _entries(transaction_id: int, tx: JournalTransaction) -> list[EntryRow]:
    return [
        EntryRow(
            transaction_id,
            p.account.kind,
            p.kind,
            p.account.user_id,
            p.account.service_id,
            p.amount.kopecks,
            _kopecks(p.balance_after),
        )
        for p in tx.postings
    ]


def _reservation(r: Reservation) -> ReservationRow:
    return ReservationRow(
        r.order_id,
        r.user_id,
        r.service_id,
        r.amount.kopecks,
        r.status,
        _kopecks(r.recognized_amount),
        r.created_at,
        r.closed_at,
        r.expires_at,
        metadata_json(r.metadata),
    )


def _kopecks(amount: Money | None) -> int | None:
    return amount.kopecks if amount is not None else None


class PostgresMovementBatch(Session, MovementBatch):
    async def lock(
        self,
        user_ids: Sequence[int],
        order_ids: Sequence[int],
        keys: Sequence[str],
        movements: Sequence[str | None],
        *,
        wait_for: Resource | None = None,
        in_turn: bool = False,
    ) -> Locked:
        await self.begin()
        try:
            if wait_for is not None:
                table, row_id = wait_for
                await self.db.run(_WAIT_FOR[table], id=row_id)
            row = await self.db.row(
                _LOCK_IN_TURN if in_turn else _LOCK,
                users=array_literal(user_ids),
                orders=array_literal(order_ids),
                keys=array_literal(keys),
                movements=array_literal(movements),
                patience=IN_TURN,
            )
        except asyncpg.PostgresError as error:
            if sqlstate(error) == LOCK_NOT_AVAILABLE:
                raise (RowsContended() if in_turn else RowsBusy()) from error
            raise (translate(error) or error) from error
        assert row is not None
        return Locked(
            accounts={user[0]: account_of(user) for user in row["users"]},
            reservations={o[0]: reservation_of(o) for o in row["orders"]},
            answers={
                key: IdempotencyRecord(fingerprint, StoredResponse(status, body))
                for key, fingerprint, status, body in row["answers"]
            },
            now=row["now"],
            transaction_ids=row["ids"],
            busy_users=frozenset(row["busy_users"]),
            busy_orders=frozenset(row["busy_orders"]),
        )

    async def write(self, changes: Changes) -> None:
        rows = rows_of(changes)
        sql = WRITES.sql_for(rows)
        if sql is None:
            return
        try:
            params = WRITES.params(rows, created_at=changes.created_at)
            counts = await self.db.row(sql, **params)
        except asyncpg.PostgresError as error:
            if sqlstate(error) == LOCK_NOT_AVAILABLE and changes.answers:
                raise RequestInProgress from error  # a key held by a transaction that lingers
            raise (translate(error) or error) from error
        assert counts is not None
        WRITES.check(counts, rows)


def reservation_of(row: Sequence[Any]) -> Reservation:
    """A reservation from its columns in table order (ReservationRow's fields)."""
    order_id, user_id, service_id, amount, status, recognized, created, closed, expires = row[:9]
    return Reservation(
        order_id,
        user_id,
        service_id,
        Money(amount),
        ReservationStatus(status),
        Money(recognized) if recognized is not None else None,
        created,
        closed,
        expires,
        pairs_of(row[9]),
    )
