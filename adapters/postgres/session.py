"""A pooled connection for one unit of work or one batch, spoken to through asyncpg.

The pool is SQLAlchemy's, behind a first-come, first-served gate; the statements are
SQLAlchemy Core compiled once (sql.py) and run by asyncpg. A connection that failed
in a way that leaves it unusable is thrown away, never handed to the next request.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.postgres.errors import is_connection_lost, translate
from adapters.postgres.sql import Db
from application.errors import StoreUnavailable


class Engine:
    """A worker's connections to PostgreSQL: SQLAlchemy's pool of `size` asyncpg
    connections, handed out in the order they were asked for.

    SQLAlchemy's pool waits on an asyncio queue, which lets a newcomer take a
    connection that was just returned while the waiter it woke has not run yet; the
    waiter then goes to the back of the queue. Under load a few requests lost their
    turn again and again: a read's p99 was 5 times its median at 64 connections. An
    asyncio semaphore serves waiters in order, and the pool behind it never waits.
    """

    def __init__(self, engine: AsyncEngine, size: int, wait: float = 30.0) -> None:
        self._engine = engine
        self._gate = asyncio.Semaphore(size)
        self._wait = wait

    async def checkout(self) -> AsyncConnection:
        try:
            async with asyncio.timeout(self._wait):
                await self._gate.acquire()
        except TimeoutError:
            raise StoreUnavailable(f"no database connection free within {self._wait:g} s") from None
        try:
            return await self._engine.connect()
        except BaseException:
            self._gate.release()
            raise

    async def checkin(self, connection: AsyncConnection) -> None:
        try:
            await connection.close()
        finally:
            self._gate.release()

    def checked_out(self) -> int:
        return int(self._engine.pool.checkedout())  # type: ignore[attr-defined]

    async def dispose(self) -> None:
        await self._engine.dispose()


class Session:
    """Leaving the block without `commit()` rolls back what was begun."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._db: Db | None = None
        self._begun = False
        self._committed = False

    @property
    def db(self) -> Db:
        assert self._db is not None, "used outside its block"
        return self._db

    async def __aenter__(self) -> Self:
        try:
            self._connection = connection = await self._engine.checkout()
            driver: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
        except BaseException as error:
            await self._release(error)
            raise (translate(error) or error) from error
        self._db = Db(driver)
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
            if translated is not None and translated is not exc:
                raise translated from exc

    async def begin(self, *, snapshot: bool = False) -> None:
        """Open the transaction, once; a `snapshot` reads one moment and writes nothing."""
        if not self._begun:
            mode = " ISOLATION LEVEL REPEATABLE READ READ ONLY" if snapshot else ""
            await self.db.connection.execute(f"BEGIN{mode}")
            self._begun = True

    async def commit(self) -> None:
        if not self._begun:
            self._committed = True  # it only read
            return
        try:
            await self.db.connection.execute("COMMIT")
        except Exception as error:
            raise (translate(error, during_commit=True) or error) from error
        self._committed = True

    async def _release(self, error: BaseException | None) -> None:
        connection, self._connection = self._connection, None
        db, self._db = self._db, None
        if connection is None:
            return
        try:
            if error is not None and _lost(error):
                await connection.invalidate()
            elif db is not None and self._begun and not self._committed:
                await db.connection.execute("ROLLBACK")
        except Exception:  # the connection is gone; throw it away
            await connection.invalidate()
        finally:
            await self._engine.checkin(connection)


def _lost(error: BaseException) -> bool:
    return is_connection_lost(error) or (
        error.__cause__ is not None and is_connection_lost(error.__cause__)
    )
