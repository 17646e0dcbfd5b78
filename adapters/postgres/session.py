"""A pooled connection for one unit of work or one batch, spoken to through asyncpg.

The pool is this module's: asyncpg connections behind a first-come, first-served
gate. The statements are SQLAlchemy Core compiled once (sql.py) and run by asyncpg.
A connection that failed in a way that leaves it unusable is thrown away, never
handed to the next request.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

import asyncpg

from adapters.postgres.errors import is_connection_lost, translate, unreplicated
from adapters.postgres.sql import Db
from application.errors import StoreUnavailable

logger = logging.getLogger("balance.pool")

_TIMED_OUT = "database unreachable: TimeoutError"
UNREPLICATED = (
    "committed on the database's primary, but its wait for the synchronous standby was"
    " cancelled: not known to be durable; a retry under the same Idempotency-Key is"
    " answered once it is"
)


class ListeningConnection(asyncpg.Connection):  # type: ignore[misc]
    """asyncpg's connection, which keeps the last WARNING of synchronous replication
    its server sent.

    A COMMIT waiting for the synchronous standby that is cancelled (`pg_cancel_backend`,
    a cancel request) has committed on the primary alone: the server says so in a
    WARNING and answers the COMMIT as done (`Session.commit` reads it). Told by the
    server's source file, which, unlike its words, is not translated (`lc_messages`);
    not by any WARNING: one that the transaction id's wraparound is near comes with
    the first write. asyncpg hands a WARNING to its listeners with `call_soon` as it
    reads it, and the server sends it before the COMMIT's completion, so the listener
    has run by the time the COMMIT returns."""

    __slots__ = ("unreplicated",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unreplicated: str | None = None
        self.add_log_listener(_keep_warning)


def _keep_warning(connection: ListeningConnection, message: Any) -> None:
    if message.severity_en == "WARNING" and message.server_source_filename == "syncrep.c":
        connection.unreplicated = message.message


def replicated(connection: ListeningConnection) -> None:
    """After a COMMIT, or a statement that committed on its own: StoreUnavailable, the
    outcome unknown, if the server said its wait for the synchronous standby was
    cancelled (committed on the primary alone). Whoever runs it sets
    `connection.unreplicated` to None first."""
    if connection.unreplicated is not None:
        unreplicated(connection.unreplicated)
        raise StoreUnavailable(UNREPLICATED, outcome_known=False)


class Engine:
    """A worker's connections to PostgreSQL: up to `size` asyncpg connections, opened
    when first needed, handed out in the order they were asked for.

    An asyncio semaphore serves waiters in order (a request that gives its connection
    back and at once asks again queues behind those already waiting), and the idle
    connections wait in a queue, oldest first, so every one stays in use. SQLAlchemy's
    pool stood here before: its checkout and return cost about 54 µs of CPU (three
    greenlet switches), as much as a round trip to the database, on every read.

    After a connect that timed out it rests: no new connection is tried for
    `rest_after_timeout` s, so the requests queued behind one that met a host gone
    without a word are answered 503 at once instead of each after its own timeout.
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        size: int,
        wait: float = 30.0,
        rest_after_timeout: float = 1.0,
    ) -> None:
        self._connect = connect
        self._gate = asyncio.Semaphore(size)
        self._wait = wait
        self._rest = rest_after_timeout
        self._resting_until = 0.0
        self._idle: deque[asyncpg.Connection] = deque()
        self._out: dict[asyncpg.Connection, int] = {}  # checked out: its generation
        self._generation = 0  # dispose() ends the connections of earlier generations

    async def checkout(self) -> asyncpg.Connection:
        try:
            async with asyncio.timeout(self._wait):
                await self._gate.acquire()
        except TimeoutError:
            raise StoreUnavailable(f"no database connection free within {self._wait:g} s") from None
        try:
            connection = self._reuse() or await self._open()
        except BaseException:
            self._gate.release()
            raise
        self._out[connection] = self._generation
        return connection

    async def _open(self) -> asyncpg.Connection:
        """A new connection. Whatever refused it (no server, a standby, a wrong password
        or database name, no answer), this request cannot be served now: 503, never a
        500. A cancelled connect is cancelled."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._resting_until:
            raise StoreUnavailable(f"{_TIMED_OUT} (a connect timed out just now)")
        try:
            return await self._connect()
        except TimeoutError as error:
            self._resting_until = loop.time() + self._rest
            raise StoreUnavailable(_TIMED_OUT) from error
        except Exception as error:
            raise StoreUnavailable(f"database unreachable: {type(error).__name__}") from error

    def _reuse(self) -> asyncpg.Connection | None:
        while self._idle:
            connection = self._idle.popleft()
            if not connection.is_closed():
                return connection
        return None

    async def checkin(self, connection: asyncpg.Connection, *, discard: bool = False) -> None:
        """Give a connection back; `discard`: it must never be used again."""
        try:
            generation = self._out.pop(connection, None)
            if discard or generation != self._generation or connection.is_closed():
                connection.terminate()
            else:
                self._idle.append(connection)
        finally:
            self._gate.release()

    def checked_out(self) -> int:
        return len(self._out)

    def forget_idle(self) -> None:
        """A statement got no answer within its time limit: the server may answer no
        one (a machine frozen or cut off), and the idle connections lead to it. They
        are ended, so the next requests open new ones (to the next host after a
        failover) instead of each waiting out a statement's limit on one of them."""
        idle, self._idle = self._idle, deque()
        for connection in idle:
            connection.terminate()

    async def dispose(self) -> None:
        """Close the idle connections; those checked out close when given back. The
        engine stays usable: later checkouts open new connections."""
        self._generation += 1
        idle, self._idle = self._idle, deque()
        for connection in idle:
            try:
                await asyncio.wait_for(connection.close(), 5)
            except Exception:  # gone already, or not answering: end it here
                logger.debug("closing an idle connection failed", exc_info=True)
                connection.terminate()


class Session:
    """Leaving the block without `commit()` rolls back what was begun."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._db: Db | None = None
        self._begun = False
        self._committed = False

    @property
    def db(self) -> Db:
        assert self._db is not None, "used outside its block"
        return self._db

    async def __aenter__(self) -> Self:
        # checkout() answers every failure as StoreUnavailable already.
        self._db = Db(await self._engine.checkout())
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

    async def begin(self) -> None:
        """Open the transaction, once."""
        if not self._begun:
            await self.db.connection.execute("BEGIN")
            self._begun = True

    async def commit(self) -> None:
        """Commit; a COMMIT whose wait for the synchronous standby was cancelled is not
        known durable (`ListeningConnection`): StoreUnavailable with the outcome
        unknown, so only a request under a key runs again, and the lock of its rows
        makes that commit wait for the standby before its answer is replayed."""
        if not self._begun:
            self._committed = True  # it only read
            return
        connection = self.db.connection
        connection.unreplicated = None
        try:
            await connection.execute("COMMIT")
        except Exception as error:
            raise (translate(error, during_commit=True) or error) from error
        self._committed = True
        replicated(connection)

    async def _release(self, error: BaseException | None) -> None:
        db, self._db = self._db, None
        if db is None:
            return
        # A connection lost is never handed to another request. One whose statement was
        # cancelled is: asyncpg has the server cancel it, and its next statement waits
        # for that.
        discard = error is not None and _lost(error)
        if error is not None and _unanswered(error):
            self._engine.forget_idle()
        try:
            if not discard and self._begun and not self._committed:
                await db.connection.execute("ROLLBACK")
        except Exception:  # the connection is gone; throw it away
            discard = True
        finally:
            await self._engine.checkin(db.connection, discard=discard)


def _unanswered(error: BaseException) -> bool:
    """A statement's time limit ran out (asyncpg's command_timeout)."""
    return _either(error, lambda e: isinstance(e, TimeoutError))


def _lost(error: BaseException) -> bool:
    return _either(error, is_connection_lost)


def _either(error: BaseException, test: Callable[[BaseException], bool]) -> bool:
    """Whether the error, or the one it was raised from, passes the test."""
    return test(error) or (error.__cause__ is not None and test(error.__cause__))
