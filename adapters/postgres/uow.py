"""PostgreSQL unit of work for reads and for naming services. Money moves only
through a batch (movements.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from sqlalchemy import BigInteger, Integer, bindparam, text

from adapters.postgres.events import PostgresEvents
from adapters.postgres.movements import (
    ACCOUNT_COLUMNS,
    ReservationRow,
    account_of,
    reservation_of,
)
from adapters.postgres.reports import PostgresServiceCatalogue
from adapters.postgres.session import Session
from adapters.postgres.sql import Db, compile_sql
from adapters.postgres.statements import PostgresStatements
from application.ports import Reservations, UnitOfWork, UserAccounts
from domain.account import UserAccount
from domain.reservation import Reservation

_R = ", ".join(f"r.{name}" for name in ReservationRow._fields)

_GET_ACCOUNT = compile_sql(
    text(f"SELECT {ACCOUNT_COLUMNS}, created_at FROM accounts WHERE user_id = :user_id").bindparams(
        bindparam("user_id", type_=BigInteger)
    )
)
# With the time the next batch of its owner would take, which decides whether a hold
# ran out: the store's clock, or the owner's row's `updated_at` if that is later (a
# clock behind the one that wrote it: movements.py, _LOCK_SQL).
_GET_RESERVATION = compile_sql(
    text(
        f"SELECT {_R}, greatest(clock_timestamp(),"
        " (SELECT a.updated_at FROM accounts AS a WHERE a.user_id = r.user_id)) AS now"
        " FROM (VALUES (1)) AS one LEFT JOIN reservations AS r ON r.order_id = :order_id"
    ).bindparams(bindparam("order_id", type_=BigInteger))
)
# The store's clock and the reservations due by it, the longest overdue first
# (through reservations_due), in one round trip.
_DUE = compile_sql(
    text(
        f"SELECT {_R}, clock.now FROM (SELECT clock_timestamp() AS now) AS clock"
        " LEFT JOIN LATERAL (SELECT * FROM reservations"
        "  WHERE status = 'reserved' AND expires_at IS NOT NULL AND expires_at <= clock.now"
        "  ORDER BY expires_at LIMIT :limit) AS r ON true"
    ).bindparams(bindparam("limit", type_=Integer))
)


class PostgresUserAccounts(UserAccounts):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def get(self, user_id: int) -> UserAccount | None:
        found = await self.opened(user_id)
        return found[0] if found else None

    async def opened(self, user_id: int) -> tuple[UserAccount, datetime] | None:
        row = await self._db.row(_GET_ACCOUNT, user_id=user_id)
        return (account_of(row), row["created_at"]) if row is not None else None


class PostgresReservations(Reservations):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def get(self, order_id: int) -> tuple[Reservation | None, datetime]:
        row = await self._db.row(_GET_RESERVATION, order_id=order_id)
        assert row is not None
        return (reservation_of(row) if row["order_id"] is not None else None), row["now"]

    async def due(self, limit: int) -> tuple[datetime, list[Reservation]]:
        rows = await self._db.rows(_DUE, limit=limit)
        return rows[0]["now"], [reservation_of(row) for row in rows if row["order_id"] is not None]


class PostgresUnitOfWork(Session, UnitOfWork):
    """Reads send no BEGIN: under READ COMMITTED every statement reads its own
    snapshot inside a transaction or not, so a read is one round trip."""

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.accounts = PostgresUserAccounts(self.db)
        self.reservations = PostgresReservations(self.db)
        self.statements = PostgresStatements(self.db)
        self.services = PostgresServiceCatalogue(self)
        self.events = PostgresEvents(self.db)
        return self
