"""One batch of money movements, one PostgreSQL transaction, five round trips at most:
the stored answers (a read, before BEGIN), BEGIN with the users' locks, the orders'
locks, the stamp, and one statement writing everything; then COMMIT.

READ COMMITTED plus row locks: users, then orders, each in ascending id, so two
batches never deadlock. Rows a batch creates (a first account, a reservation, an
idempotency key) go in with ON CONFLICT DO NOTHING: if another transaction created
one meanwhile, the count tells, nothing is committed and the batch is run again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import BigInteger, Text, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY

from adapters.postgres.errors import LOCK_NOT_AVAILABLE, sqlstate, translate
from adapters.postgres.session import Session
from adapters.postgres.sql import compile_sql
from adapters.postgres.tables import accounts, idempotency_keys, reservations
from application.errors import ConcurrentUpdate, RequestInProgress
from application.ports import (
    Changes,
    IdempotencyRecord,
    Locked,
    MovementBatch,
    Stamp,
    StoredResponse,
)
from domain.account import UserAccount
from domain.money import Money
from domain.reservation import Reservation, ReservationStatus

_ANSWERS = compile_sql(
    select(
        idempotency_keys.c.key,
        idempotency_keys.c.fingerprint,
        idempotency_keys.c.status,
        idempotency_keys.c.body,
    ).where(
        idempotency_keys.c.key == func.any(bindparam("keys", type_=ARRAY(Text))),
        idempotency_keys.c.status.is_not(None),
    )
)
_LOCK_USERS = compile_sql(
    select(accounts.c.user_id, accounts.c.available, accounts.c.reserved)
    .where(accounts.c.user_id == func.any(bindparam("ids", type_=ARRAY(BigInteger))))
    .order_by(accounts.c.user_id)
    .with_for_update()
)
_LOCK_ORDERS = compile_sql(
    select(reservations)
    .where(reservations.c.order_id == func.any(bindparam("ids", type_=ARRAY(BigInteger))))
    .order_by(reservations.c.order_id)
    .with_for_update()
)
# After the locks: a later batch on the same rows gets a later time and higher ids.
_STAMP = compile_sql(
    text(
        "SELECT clock_timestamp() AS now, ARRAY(SELECT nextval("
        "pg_get_serial_sequence('transactions', 'id')) FROM generate_series(1, :count)) AS ids"
    )
)
# Everything a batch writes, each row once and in final form; entries keep their
# posting order, so a user's entries replay in id order. Every data-modifying CTE
# runs whether or not the final SELECT reads it; foreign keys are checked at the
# end of the statement, when the rows they point to are there.
_WRITE = compile_sql(
    text(
        """
        WITH saved AS (
            UPDATE accounts AS a
            SET available = u.available, reserved = u.reserved, updated_at = clock_timestamp()
            FROM unnest(CAST(:saved_ids AS bigint[]), CAST(:saved_available AS bigint[]),
                        CAST(:saved_reserved AS bigint[])) AS u(user_id, available, reserved)
            WHERE a.user_id = u.user_id
            RETURNING 1
        ), opened AS (
            INSERT INTO accounts (user_id, available, reserved)
            SELECT * FROM unnest(CAST(:opened_ids AS bigint[]),
                                 CAST(:opened_available AS bigint[]),
                                 CAST(:opened_reserved AS bigint[]))
            ON CONFLICT DO NOTHING
            RETURNING 1
        ), recorded AS (
            INSERT INTO transactions (id, kind, user_id, counterparty_user_id, service_id,
                                      order_id, description, created_at)
            OVERRIDING SYSTEM VALUE
            SELECT t.*, CAST(:created_at AS timestamptz)
            FROM unnest(CAST(:tx_ids AS bigint[]), CAST(:tx_kinds AS text[]),
                        CAST(:tx_users AS bigint[]), CAST(:tx_counterparties AS bigint[]),
                        CAST(:tx_services AS bigint[]), CAST(:tx_orders AS bigint[]),
                        CAST(:tx_descriptions AS text[])) AS t
            RETURNING 1
        ), written AS (
            INSERT INTO entries (transaction_id, account, kind, user_id, service_id, amount,
                                 balance_after, created_at)
            SELECT e.transaction_id, e.account, e.kind, e.user_id, e.service_id, e.amount,
                   e.balance_after, CAST(:created_at AS timestamptz)
            FROM unnest(CAST(:entry_transactions AS bigint[]), CAST(:entry_accounts AS text[]),
                        CAST(:entry_kinds AS text[]), CAST(:entry_users AS bigint[]),
                        CAST(:entry_services AS bigint[]), CAST(:entry_amounts AS bigint[]),
                        CAST(:entry_balances AS bigint[]))
                 WITH ORDINALITY AS e(transaction_id, account, kind, user_id, service_id,
                                      amount, balance_after, position)
            ORDER BY e.position
            RETURNING 1
        ), added AS (
            INSERT INTO reservations (order_id, user_id, service_id, amount, status,
                                      recognized_amount, created_at, closed_at, expires_at)
            SELECT * FROM unnest(CAST(:added_orders AS bigint[]), CAST(:added_users AS bigint[]),
                                 CAST(:added_services AS bigint[]),
                                 CAST(:added_amounts AS bigint[]),
                                 CAST(:added_status AS text[]),
                                 CAST(:added_recognized AS bigint[]),
                                 CAST(:added_created AS timestamptz[]),
                                 CAST(:added_closed AS timestamptz[]),
                                 CAST(:added_expires AS timestamptz[]))
            ON CONFLICT DO NOTHING
            RETURNING 1
        ), closed AS (
            UPDATE reservations AS r
            SET status = c.status, recognized_amount = c.recognized_amount,
                closed_at = c.closed_at
            FROM unnest(CAST(:closed_orders AS bigint[]), CAST(:closed_status AS text[]),
                        CAST(:closed_recognized AS bigint[]),
                        CAST(:closed_at AS timestamptz[]))
                 AS c(order_id, status, recognized_amount, closed_at)
            WHERE r.order_id = c.order_id AND r.status = 'reserved'
            RETURNING 1
        ), answered AS (
            INSERT INTO idempotency_keys (key, fingerprint, status, body)
            SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:fingerprints AS text[]),
                                 CAST(:statuses AS smallint[]), CAST(:bodies AS bytea[]))
            ON CONFLICT DO NOTHING
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM saved) AS saved, (SELECT count(*) FROM opened) AS opened,
               (SELECT count(*) FROM recorded) AS recorded,
               (SELECT count(*) FROM written) AS written, (SELECT count(*) FROM added) AS added,
               (SELECT count(*) FROM closed) AS closed, (SELECT count(*) FROM answered) AS answered
        """
    )
)


class PostgresMovementBatch(Session, MovementBatch):
    async def answers(self, keys: Sequence[str]) -> dict[str, IdempotencyRecord]:
        rows = await self.db.rows(_ANSWERS, keys=list(keys))
        return {
            row["key"]: IdempotencyRecord(
                row["fingerprint"], StoredResponse(row["status"], row["body"])
            )
            for row in rows
        }

    async def lock(self, user_ids: Sequence[int], order_ids: Sequence[int]) -> Locked:
        await self.begin()
        users = await self.db.rows(_LOCK_USERS, ids=list(user_ids)) if user_ids else []
        orders = await self.db.rows(_LOCK_ORDERS, ids=list(order_ids)) if order_ids else []
        return Locked(
            {
                row["user_id"]: UserAccount(
                    row["user_id"], Money(row["available"]), Money(row["reserved"])
                )
                for row in users
            },
            {row["order_id"]: reservation_of(row) for row in orders},
        )

    async def stamp(self, transactions: int) -> Stamp:
        row = await self.db.row(_STAMP, count=transactions)
        assert row is not None
        return Stamp(row["now"], list(row["ids"]))

    async def write(self, changes: Changes, stamp: Stamp) -> None:
        try:
            counts = await self.db.row(_WRITE, **_write_params(changes, stamp))
        except asyncpg.PostgresError as error:
            if sqlstate(error) == LOCK_NOT_AVAILABLE and changes.answers:
                raise RequestInProgress from error  # a key held by a transaction that lingers
            raise (translate(error) or error) from error
        assert counts is not None
        created = {
            "opened": len(changes.opened),
            "added": len(changes.added),
            "answered": len(changes.answers),
        }
        if any(counts[name] != expected for name, expected in created.items()):
            raise ConcurrentUpdate(f"rows created meanwhile: {dict(counts)} of {created}")
        expected = {
            "saved": len(changes.saved),
            "closed": len(changes.closed),
            "recorded": len(changes.transactions),
        }
        if any(counts[name] != n for name, n in expected.items()):
            raise AssertionError(f"locked rows changed under the lock: {dict(counts)}")


def _write_params(changes: Changes, stamp: Stamp) -> dict[str, Any]:
    transactions = [tx for _, tx in changes.transactions]
    postings = [(i, p) for i, tx in changes.transactions for p in tx.postings]
    reservations_added, reservations_closed = changes.added, changes.closed
    answers = sorted(changes.answers.items())
    return {
        "created_at": stamp.created_at,
        "saved_ids": [a.user_id for a in changes.saved],
        "saved_available": [a.available.kopecks for a in changes.saved],
        "saved_reserved": [a.reserved.kopecks for a in changes.saved],
        "opened_ids": [a.user_id for a in changes.opened],
        "opened_available": [a.available.kopecks for a in changes.opened],
        "opened_reserved": [a.reserved.kopecks for a in changes.opened],
        "tx_ids": [i for i, _ in changes.transactions],
        "tx_kinds": [tx.kind.value for tx in transactions],
        "tx_users": [tx.user_id for tx in transactions],
        "tx_counterparties": [tx.counterparty_user_id for tx in transactions],
        "tx_services": [tx.service_id for tx in transactions],
        "tx_orders": [tx.order_id for tx in transactions],
        "tx_descriptions": [tx.description for tx in transactions],
        "entry_transactions": [i for i, _ in postings],
        "entry_accounts": [p.account.kind.value for _, p in postings],
        "entry_kinds": [p.kind.value for _, p in postings],
        "entry_users": [p.account.user_id for _, p in postings],
        "entry_services": [p.account.service_id for _, p in postings],
        "entry_amounts": [p.amount.kopecks for _, p in postings],
        "entry_balances": [
            p.balance_after.kopecks if p.balance_after is not None else None for _, p in postings
        ],
        "added_orders": [r.order_id for r in reservations_added],
        "added_users": [r.user_id for r in reservations_added],
        "added_services": [r.service_id for r in reservations_added],
        "added_amounts": [r.amount.kopecks for r in reservations_added],
        "added_status": [r.status.value for r in reservations_added],
        "added_recognized": [_kopecks(r.recognized_amount) for r in reservations_added],
        "added_created": [r.created_at for r in reservations_added],
        "added_closed": [r.closed_at for r in reservations_added],
        "added_expires": [r.expires_at for r in reservations_added],
        "closed_orders": [r.order_id for r in reservations_closed],
        "closed_status": [r.status.value for r in reservations_closed],
        "closed_recognized": [_kopecks(r.recognized_amount) for r in reservations_closed],
        "closed_at": [r.closed_at for r in reservations_closed],
        "keys": [key for key, _ in answers],
        "fingerprints": [record.fingerprint for _, record in answers],
        "statuses": [record.response.status for _, record in answers],
        "bodies": [record.response.body for _, record in answers],
    }


def _kopecks(amount: Money | None) -> int | None:
    return amount.kopecks if amount is not None else None


def reservation_of(row: asyncpg.Record) -> Reservation:
    recognized = row["recognized_amount"]
    return Reservation(
        row["order_id"],
        row["user_id"],
        row["service_id"],
        Money(row["amount"]),
        ReservationStatus(row["status"]),
        Money(recognized) if recognized is not None else None,
        row["created_at"],
        row["closed_at"],
        row["expires_at"],
    )
