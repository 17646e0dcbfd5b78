"""PostgreSQL unit of work and repositories: SQL built with SQLAlchemy Core, run on asyncpg.

READ COMMITTED plus row locks: every write locks the user rows it touches
(ascending id) and reservation state changes are guarded in the UPDATE itself.

Round trips are what a money movement waits for, so the repositories share one
`_Work`: opening an account waits for the next lock (one statement when the user
exists), and balances saved are written by the same statement that records the
journal transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import asyncpg
from sqlalchemy import BigInteger, bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.postgres.errors import is_connection_lost, translate
from adapters.postgres.reports import PostgresServiceCatalogue
from adapters.postgres.sql import Db, compile_sql
from adapters.postgres.statements import PostgresStatements
from adapters.postgres.tables import accounts, idempotency_keys, reservations
from application.errors import RequestInProgress
from application.ports import (
    IdempotencyKeys,
    IdempotencyRecord,
    Journal,
    RecordedTransaction,
    Reservations,
    StoredResponse,
    UnitOfWork,
    UserAccounts,
)
from domain.account import UserAccount
from domain.ledger import JournalTransaction
from domain.money import Money
from domain.reservation import Reservation, ReservationStatus

_IDS = bindparam("ids", type_=ARRAY(BigInteger))

_GET_ACCOUNT = compile_sql(
    select(accounts.c.available, accounts.c.reserved).where(
        accounts.c.user_id == bindparam("user_id")
    )
)
_LOCK_ACCOUNTS = compile_sql(
    select(accounts.c.user_id, accounts.c.available, accounts.c.reserved)
    .where(accounts.c.user_id == func.any(_IDS))
    .order_by(accounts.c.user_id)
    .with_for_update()
)
_OPEN_ACCOUNTS = compile_sql(
    text(
        "INSERT INTO accounts (user_id) SELECT unnest(CAST(:ids AS bigint[])) ORDER BY 1"
        " ON CONFLICT DO NOTHING"
    )
)
# Balances computed by the domain, written for all locked users in one statement.
_SAVE = """
    UPDATE accounts AS a
    SET available = u.available, reserved = u.reserved, updated_at = clock_timestamp()
    FROM unnest(CAST(:save_ids AS bigint[]), CAST(:save_available AS bigint[]),
                CAST(:save_reserved AS bigint[])) AS u(user_id, available, reserved)
    WHERE a.user_id = u.user_id
"""
_SAVE_ACCOUNTS = compile_sql(text(_SAVE))

# One round trip saves the balances and writes the transaction and all its entries;
# entries keep the posting order, so a user's entries replay in id order. Every
# data-modifying CTE runs to completion whether or not the final SELECT reads it.
_RECORD = compile_sql(
    text(
        f"""
        WITH saved AS ({_SAVE} RETURNING 1), tx AS (
            INSERT INTO transactions
                (kind, user_id, counterparty_user_id, service_id, order_id, description)
            VALUES (:kind, :user_id, :counterparty_user_id, :service_id, :order_id, :description)
            RETURNING id, created_at
        ), written AS (
            INSERT INTO entries
                (transaction_id, account, kind, user_id, service_id, amount, balance_after,
                 created_at)
            SELECT tx.id, e.account, e.kind, e.user_id, e.service_id, e.amount,
                   e.balance_after, tx.created_at
            FROM tx, unnest(CAST(:accounts AS text[]), CAST(:kinds AS text[]),
                            CAST(:user_ids AS bigint[]), CAST(:service_ids AS bigint[]),
                            CAST(:amounts AS bigint[]), CAST(:balances AS bigint[]))
                     WITH ORDINALITY AS e(account, kind, user_id, service_id, amount,
                                          balance_after, position)
            ORDER BY e.position
            RETURNING 1
        )
        SELECT tx.id, tx.created_at, (SELECT count(*) FROM written) AS entries,
               (SELECT count(*) FROM saved) AS saved
        FROM tx
        """,  # noqa: S608 - _SAVE is a constant fragment, no input
    )
)

_GET_RESERVATION = compile_sql(
    select(reservations).where(reservations.c.order_id == bindparam("order_id"))
)
_LOCK_RESERVATION = compile_sql(
    select(reservations).where(reservations.c.order_id == bindparam("order_id")).with_for_update()
)
_ADD_RESERVATION = compile_sql(
    insert(reservations).values(
        order_id=bindparam("order_id"),
        user_id=bindparam("user_id"),
        service_id=bindparam("service_id"),
        amount=bindparam("amount"),
        status=bindparam("status"),
        created_at=bindparam("created_at"),
    )
)
_CLOSE_RESERVATION = compile_sql(
    update(reservations)
    .where(
        reservations.c.order_id == bindparam("order_id"),
        reservations.c.status == ReservationStatus.RESERVED.value,
    )
    .values(
        status=bindparam("status"),
        recognized_amount=bindparam("recognized_amount"),
        closed_at=bindparam("closed_at"),
    )
)

# The key's claim rides with BEGIN, its answer with COMMIT: two statements in one
# simple-protocol message each (a round trip saved twice), so their values are
# written as literals by _literal.
_CLAIM_KEY = (
    "INSERT INTO idempotency_keys (key, fingerprint) VALUES ({key}, {fingerprint})"
    " ON CONFLICT DO NOTHING"
)
_COMPLETE_KEY = (
    "UPDATE idempotency_keys SET status = {status}, body = '\\x{body}'::bytea WHERE key = {key}"
)


def _literal(value: str) -> str:
    """A SQL string literal (standard_conforming_strings is on for every connection)."""
    if "\x00" in value:
        raise ValueError("a NUL cannot be sent to PostgreSQL")
    return "'" + value.replace("'", "''") + "'"


_GET_KEY = compile_sql(
    select(
        idempotency_keys.c.fingerprint, idempotency_keys.c.status, idempotency_keys.c.body
    ).where(idempotency_keys.c.key == bindparam("key"))
)


class _Work:
    """What the repositories of one unit of work share: the connection, whether a
    transaction is open, and the writes that wait for the next statement.

    BEGIN is sent before the first lock or write, not at the start: under READ
    COMMITTED every statement reads its own snapshot inside a transaction or not,
    so a unit of work that only reads needs neither BEGIN nor ROLLBACK (a balance
    read is one round trip instead of three).
    """

    __slots__ = ("answer", "begun", "db", "to_open", "to_save")

    def __init__(self, db: Db) -> None:
        self.db = db
        self.begun = False
        self.answer: str | None = None  # the idempotency answer, sent with COMMIT
        self.to_open: set[int] = set()
        self.to_save: dict[int, UserAccount] = {}

    async def begin(self) -> None:
        if not self.begun:
            await self.db.connection.execute("BEGIN")
            self.begun = True

    def saved_params(self) -> dict[str, Any]:
        saving = sorted(self.to_save.values(), key=lambda a: a.user_id)
        self.to_save = {}
        return {
            "save_ids": [a.user_id for a in saving],
            "save_available": [a.available.kopecks for a in saving],
            "save_reserved": [a.reserved.kopecks for a in saving],
        }

    async def flush(self) -> None:
        if self.to_save:
            await self.begin()
            await self.db.run(_SAVE_ACCOUNTS, **self.saved_params())


class PostgresUserAccounts(UserAccounts):
    def __init__(self, work: _Work) -> None:
        self._work = work

    async def get(self, user_id: int) -> UserAccount | None:
        await self._work.flush()
        row = await self._work.db.row(_GET_ACCOUNT, user_id=user_id)
        if row is None:
            return None
        return UserAccount(user_id, Money(row["available"]), Money(row["reserved"]))

    async def open(self, user_id: int) -> None:
        # Done by the next lock(): one statement instead of two when the user exists.
        self._work.to_open.add(user_id)

    async def lock(self, user_ids: Sequence[int]) -> dict[int, UserAccount]:
        await self._work.flush()
        await self._work.begin()
        ids = sorted(set(user_ids))
        found = await self._locked(ids)
        missing = [i for i in ids if i not in found and i in self._work.to_open]
        if missing:  # a first credit: create, then lock what was created
            await self._work.db.run(_OPEN_ACCOUNTS, ids=missing)
            found |= await self._locked(missing)
        self._work.to_open.difference_update(ids)
        return found

    async def _locked(self, ids: list[int]) -> dict[int, UserAccount]:
        rows = await self._work.db.rows(_LOCK_ACCOUNTS, ids=ids)
        return {
            r["user_id"]: UserAccount(r["user_id"], Money(r["available"]), Money(r["reserved"]))
            for r in rows
        }

    async def save(self, account: UserAccount) -> None:
        # Written by the journal's next record (or at commit), in the same statement.
        self._work.to_save[account.user_id] = account


class PostgresReservations(Reservations):
    def __init__(self, work: _Work) -> None:
        self._work = work
        self._db = work.db

    async def get(self, order_id: int) -> Reservation | None:
        return _reservation(await self._db.row(_GET_RESERVATION, order_id=order_id))

    async def lock(self, order_id: int) -> Reservation | None:
        await self._work.begin()
        return _reservation(await self._db.row(_LOCK_RESERVATION, order_id=order_id))

    async def add(self, reservation: Reservation) -> None:
        # A unique violation here means a concurrent reserve took the order id:
        # the unit of work turns it into ConcurrentUpdate and the runner retries.
        await self._work.begin()
        await self._db.run(
            _ADD_RESERVATION,
            order_id=reservation.order_id,
            user_id=reservation.user_id,
            service_id=reservation.service_id,
            amount=reservation.amount.kopecks,
            status=reservation.status.value,
            created_at=reservation.created_at,
        )

    async def close(self, reservation: Reservation) -> None:
        recognized = reservation.recognized_amount
        await self._work.begin()
        tag = await self._db.run(
            _CLOSE_RESERVATION,
            order_id=reservation.order_id,
            status=reservation.status.value,
            recognized_amount=recognized.kopecks if recognized else None,
            closed_at=reservation.closed_at,
        )
        if tag != "UPDATE 1":
            raise AssertionError(f"order {reservation.order_id} was closed under a lock")


def _reservation(row: asyncpg.Record | None) -> Reservation | None:
    if row is None:
        return None
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
    )


class PostgresJournal(Journal):
    def __init__(self, work: _Work) -> None:
        self._work = work

    async def record(self, transaction: JournalTransaction) -> RecordedTransaction:
        postings = transaction.postings
        await self._work.begin()
        saving = self._work.saved_params()
        row = await self._work.db.row(
            _RECORD,
            **saving,
            kind=transaction.kind.value,
            user_id=transaction.user_id,
            counterparty_user_id=transaction.counterparty_user_id,
            service_id=transaction.service_id,
            order_id=transaction.order_id,
            description=transaction.description,
            accounts=[p.account.kind.value for p in postings],
            kinds=[p.kind.value for p in postings],
            user_ids=[p.account.user_id for p in postings],
            service_ids=[p.account.service_id for p in postings],
            amounts=[p.amount.kopecks for p in postings],
            balances=[
                p.balance_after.kopecks if p.balance_after is not None else None for p in postings
            ],
        )
        assert row is not None
        if row["saved"] != len(saving["save_ids"]):
            raise AssertionError(f"saved {row['saved']} of {saving['save_ids']} locked accounts")
        return RecordedTransaction(row["id"], row["created_at"])


class PostgresIdempotencyKeys(IdempotencyKeys):
    def __init__(self, work: _Work) -> None:
        self._work = work
        self._db = work.db

    async def claim(self, key: str, fingerprint: str) -> IdempotencyRecord | None:
        # A concurrent transaction holding the same key makes this INSERT wait
        # until it commits (then we replay) or rolls back (then the key is ours).
        claim = _CLAIM_KEY.format(key=_literal(key), fingerprint=_literal(fingerprint))
        if not self._work.begun:
            self._work.begun = True  # set first: if the claim fails, ROLLBACK is due
            claim = f"BEGIN; {claim}"
        try:
            tag = await self._db.connection.execute(claim)
        except asyncpg.LockNotAvailableError as error:
            raise RequestInProgress from error
        if tag == "INSERT 0 1":
            return None
        row = await self._db.row(_GET_KEY, key=key)
        assert row is not None
        return IdempotencyRecord(row["fingerprint"], StoredResponse(row["status"], row["body"]))

    async def complete(self, key: str, response: StoredResponse) -> None:
        self._work.answer = _COMPLETE_KEY.format(
            status=int(response.status), body=response.body.hex(), key=_literal(key)
        )


class PostgresUnitOfWork(UnitOfWork):
    """A pooled connection (SQLAlchemy's pool) driven directly through asyncpg."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._committed = False
        self._work: _Work | None = None

    async def __aenter__(self) -> Self:
        try:
            self._connection = connection = await self._engine.connect()
            driver: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
        except BaseException as error:
            await self._release(error)
            raise (translate(error) or error) from error
        self._work = work = _Work(Db(driver))
        self.accounts = PostgresUserAccounts(work)
        self.reservations = PostgresReservations(work)
        self.journal = PostgresJournal(work)
        self.idempotency = PostgresIdempotencyKeys(work)
        self.statements = PostgresStatements(work.db)
        self.services = PostgresServiceCatalogue(work)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._release(exc)
        if exc is not None:
            translated = translate(exc)
            if translated is not None:
                raise translated from exc

    async def _release(self, error: BaseException | None) -> None:
        connection, self._connection = self._connection, None
        work, self._work = self._work, None
        if connection is None:
            return
        try:
            if error is not None and (
                is_connection_lost(error)
                or (error.__cause__ is not None and is_connection_lost(error.__cause__))
            ):
                await connection.invalidate()
            elif work is not None and work.begun and not self._committed:
                await work.db.connection.execute("ROLLBACK")
        except Exception:  # the connection is gone; throw it away
            await connection.invalidate()
        finally:
            await connection.close()

    async def commit(self) -> None:
        assert self._work is not None, "commit outside the unit of work"
        try:
            await self._work.flush()
        except Exception as error:
            raise (translate(error) or error) from error
        if not self._work.begun:
            self._committed = True  # it only read
            return
        answer, self._work.answer = self._work.answer, None
        try:
            await self._work.db.connection.execute(f"{answer}; COMMIT" if answer else "COMMIT")
            self._committed = True
        except Exception as error:
            raise (translate(error, during_commit=True) or error) from error
