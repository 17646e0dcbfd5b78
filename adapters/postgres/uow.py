"""PostgreSQL unit of work for reads and for naming services. Money moves only
through a batch (movements.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from sqlalchemy import Integer, bindparam, func, select

from adapters.postgres.movements import reservation_of
from adapters.postgres.reports import PostgresServiceCatalogue
from adapters.postgres.session import Session
from adapters.postgres.sql import Db, compile_sql
from adapters.postgres.statements import PostgresStatements
from adapters.postgres.tables import TimestampTZ, accounts, reservations
from application.ports import Reservations, UnitOfWork, UserAccounts
from domain.account import UserAccount
from domain.money import Money
from domain.reservation import Reservation

_GET_ACCOUNT = compile_sql(
    select(accounts.c.available, accounts.c.reserved).where(
        accounts.c.user_id == bindparam("user_id")
    )
)
_GET_RESERVATION = compile_sql(
    select(reservations).where(reservations.c.order_id == bindparam("order_id"))
)
_NOW = compile_sql(select(func.clock_timestamp()))
# Through reservations_due, the longest overdue first.
_DUE = compile_sql(
    select(reservations)
    .where(
        reservations.c.status == "reserved",
        reservations.c.expires_at.is_not(None),
        reservations.c.expires_at <= bindparam("now", type_=TimestampTZ),
    )
    .order_by(reservations.c.expires_at)
    .limit(bindparam("limit", type_=Integer))
)


class PostgresUserAccounts(UserAccounts):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def get(self, user_id: int) -> UserAccount | None:
        row = await self._db.row(_GET_ACCOUNT, user_id=user_id)
        if row is None:
            return None
        return UserAccount(user_id, Money(row["available"]), Money(row["reserved"]))


class PostgresReservations(Reservations):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def get(self, order_id: int) -> Reservation | None:
        row = await self._db.row(_GET_RESERVATION, order_id=order_id)
        return reservation_of(row) if row is not None else None

    async def due(self, limit: int) -> tuple[datetime, list[Reservation]]:
        now = await self._db.value(_NOW)
        rows = await self._db.rows(_DUE, now=now, limit=limit)
        return now, [reservation_of(row) for row in rows]


class PostgresUnitOfWork(Session, UnitOfWork):
    """Reads send no BEGIN: under READ COMMITTED every statement reads its own
    snapshot inside a transaction or not, so a read is one round trip."""

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.accounts = PostgresUserAccounts(self.db)
        self.reservations = PostgresReservations(self.db)
        self.statements = PostgresStatements(self.db)
        self.services = PostgresServiceCatalogue(self)
        return self
