"""PostgreSQL unit of work and repositories: SQLAlchemy Core on asyncpg, no ORM session.

READ COMMITTED plus row locks: every write locks the user rows it touches
(ascending id) and reservation state changes are guarded in the UPDATE itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Self

from sqlalchemy import BigInteger, bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.postgres.errors import LOCK_NOT_AVAILABLE, sqlstate, translate
from adapters.postgres.reports import PostgresServiceCatalogue
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

_LOCK_ACCOUNTS = (
    select(accounts.c.user_id, accounts.c.available, accounts.c.reserved)
    .where(accounts.c.user_id == func.any(bindparam("ids", type_=ARRAY(BigInteger))))
    .order_by(accounts.c.user_id)
    .with_for_update()
)

# One round trip writes the transaction and all its entries; entries keep the
# posting order, so a user's entries replay in id order.
_RECORD = text(
    """
    WITH tx AS (
        INSERT INTO transactions
            (kind, user_id, counterparty_user_id, service_id, order_id, description)
        VALUES (:kind, :user_id, :counterparty_user_id, :service_id, :order_id, :description)
        RETURNING id, created_at
    ), written AS (
        INSERT INTO entries
            (transaction_id, account, kind, user_id, service_id, amount, balance_after, created_at)
        SELECT tx.id, e.account, e.kind, e.user_id, e.service_id, e.amount, e.balance_after,
               tx.created_at
        FROM tx, unnest(CAST(:accounts AS text[]), CAST(:kinds AS text[]),
                        CAST(:user_ids AS bigint[]), CAST(:service_ids AS bigint[]),
                        CAST(:amounts AS bigint[]), CAST(:balances AS bigint[]))
                 WITH ORDINALITY AS e(account, kind, user_id, service_id, amount,
                                      balance_after, position)
        ORDER BY e.position
        RETURNING 1
    )
    SELECT tx.id, tx.created_at, (SELECT count(*) FROM written) AS entries FROM tx
    """
)


class PostgresUserAccounts(UserAccounts):
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def get(self, user_id: int) -> UserAccount | None:
        row = (
            await self._db.execute(
                select(accounts.c.available, accounts.c.reserved).where(
                    accounts.c.user_id == user_id
                )
            )
        ).first()
        return UserAccount(user_id, Money(row.available), Money(row.reserved)) if row else None

    async def open(self, user_id: int) -> None:
        await self._db.execute(pg_insert(accounts).values(user_id=user_id).on_conflict_do_nothing())

    async def lock(self, user_ids: Sequence[int]) -> dict[int, UserAccount]:
        rows = await self._db.execute(_LOCK_ACCOUNTS, {"ids": sorted(set(user_ids))})
        return {
            r.user_id: UserAccount(r.user_id, Money(r.available), Money(r.reserved)) for r in rows
        }

    async def save(self, account: UserAccount) -> None:
        await self._db.execute(
            update(accounts)
            .where(accounts.c.user_id == account.user_id)
            .values(
                available=account.available.kopecks,
                reserved=account.reserved.kopecks,
                updated_at=func.clock_timestamp(),
            )
        )


class PostgresReservations(Reservations):
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def get(self, order_id: int) -> Reservation | None:
        return await self._load(order_id, lock=False)

    async def lock(self, order_id: int) -> Reservation | None:
        return await self._load(order_id, lock=True)

    async def _load(self, order_id: int, *, lock: bool) -> Reservation | None:
        query = select(reservations).where(reservations.c.order_id == order_id)
        row = (await self._db.execute(query.with_for_update() if lock else query)).first()
        if row is None:
            return None
        return Reservation(
            row.order_id,
            row.user_id,
            row.service_id,
            Money(row.amount),
            ReservationStatus(row.status),
            Money(row.recognized_amount) if row.recognized_amount is not None else None,
            row.created_at,
            row.closed_at,
        )

    async def add(self, reservation: Reservation) -> None:
        # A unique violation here means a concurrent reserve took the order id:
        # the unit of work turns it into ConcurrentUpdate and the runner retries.
        await self._db.execute(
            insert(reservations).values(
                order_id=reservation.order_id,
                user_id=reservation.user_id,
                service_id=reservation.service_id,
                amount=reservation.amount.kopecks,
                status=reservation.status.value,
                created_at=reservation.created_at,
            )
        )

    async def close(self, reservation: Reservation) -> None:
        recognized = reservation.recognized_amount
        result = await self._db.execute(
            update(reservations)
            .where(
                reservations.c.order_id == reservation.order_id,
                reservations.c.status == ReservationStatus.RESERVED.value,
            )
            .values(
                status=reservation.status.value,
                recognized_amount=recognized.kopecks if recognized else None,
                closed_at=reservation.closed_at,
            )
        )
        if result.rowcount != 1:
            raise AssertionError(f"order {reservation.order_id} was closed under a lock")


class PostgresJournal(Journal):
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def record(self, transaction: JournalTransaction) -> RecordedTransaction:
        postings = transaction.postings
        row = (
            await self._db.execute(
                _RECORD,
                {
                    "kind": transaction.kind.value,
                    "user_id": transaction.user_id,
                    "counterparty_user_id": transaction.counterparty_user_id,
                    "service_id": transaction.service_id,
                    "order_id": transaction.order_id,
                    "description": transaction.description,
                    "accounts": [p.account.kind.value for p in postings],
                    "kinds": [p.kind.value for p in postings],
                    "user_ids": [p.account.user_id for p in postings],
                    "service_ids": [p.account.service_id for p in postings],
                    "amounts": [p.amount.kopecks for p in postings],
                    "balances": [
                        p.balance_after.kopecks if p.balance_after is not None else None
                        for p in postings
                    ],
                },
            )
        ).one()
        return RecordedTransaction(row.id, row.created_at)


class PostgresIdempotencyKeys(IdempotencyKeys):
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def claim(self, key: str, fingerprint: str) -> IdempotencyRecord | None:
        # A concurrent transaction holding the same key makes this INSERT wait
        # until it commits (then we replay) or rolls back (then the key is ours).
        try:
            claimed = (
                await self._db.execute(
                    pg_insert(idempotency_keys)
                    .values(key=key, fingerprint=fingerprint)
                    .on_conflict_do_nothing()
                    .returning(idempotency_keys.c.key)
                )
            ).first()
        except Exception as error:
            if sqlstate(error) == LOCK_NOT_AVAILABLE:
                raise RequestInProgress from error
            raise
        if claimed is not None:
            return None
        row = (
            await self._db.execute(select(idempotency_keys).where(idempotency_keys.c.key == key))
        ).one()
        return IdempotencyRecord(row.fingerprint, StoredResponse(row.status, row.body))

    async def complete(self, key: str, response: StoredResponse) -> None:
        await self._db.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.key == key)
            .values(status=response.status, body=response.body)
        )


class PostgresUnitOfWork(UnitOfWork):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        try:
            self._connection = connection = await self._engine.connect()
            await connection.begin()
        except Exception as error:
            raise (translate(error) or error) from error
        self.accounts = PostgresUserAccounts(connection)
        self.reservations = PostgresReservations(connection)
        self.journal = PostgresJournal(connection)
        self.idempotency = PostgresIdempotencyKeys(connection)
        self.statements = PostgresStatements(connection)
        self.services = PostgresServiceCatalogue(connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if connection.in_transaction():
                await connection.rollback()
        except Exception:  # noqa: S110 - the connection is gone; closing it discards it
            pass
        finally:
            await connection.close()
        if exc is not None:
            translated = translate(exc)
            if translated is not None:
                raise translated from exc

    async def commit(self) -> None:
        assert self._connection is not None, "commit outside the unit of work"
        try:
            await self._connection.commit()
        except Exception as error:
            raise (translate(error, during_commit=True) or error) from error
