"""PostgreSQL failures translated to what the application can act on."""

from __future__ import annotations

import logging
import math
import time

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from application.errors import ConcurrentUpdate, StoreUnavailable

SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"
UNIQUE_VIOLATION = "23505"
LOCK_NOT_AVAILABLE = "55P03"
READ_ONLY = "25006"
_RETRYABLE = {SERIALIZATION_FAILURE, DEADLOCK_DETECTED, LOCK_NOT_AVAILABLE}
_SERVER_TROUBLE = ("53", "57", "58")
"""SQLSTATE classes of the server's own trouble, whichever request met it: 53
insufficient resources (disk full, out of memory, too many connections), 57 operator
intervention (a statement cancelled: `statement_timeout`, `pg_cancel_backend`; its
57P codes, shutting down, are a connection lost), 58 system error (I/O). Not the
request's fault, so not isolated as if it were (a batch split in halves down to each
request, every one of them answered 500): a 503, the batch tried again whole."""
SAID_EVERY = 60.0
"""Seconds between two log lines for the same server trouble."""

logger = logging.getLogger("balance.db")
_said: dict[str, float] = {}


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of an asyncpg error, or of one SQLAlchemy wrapped."""
    code = getattr(error, "sqlstate", None)
    if code is None:
        orig = getattr(error, "orig", None)
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return str(code) if code else None


def is_connection_lost(error: BaseException) -> bool:
    code = sqlstate(error)
    return (
        isinstance(
            error,
            InterfaceError
            | OperationalError
            | ConnectionError
            | OSError
            | asyncpg.InterfaceError
            | asyncpg.InternalClientError
            | asyncpg.ConnectionDoesNotExistError
            | asyncpg.PostgresConnectionError,
        )
        or (isinstance(error, DBAPIError) and error.connection_invalidated)
        # A server shutting down (57P), gone (08), or read-only (25006: a standby, or
        # a primary demoted under it): this connection must never be used again.
        or (code is not None and (code.startswith(("08", "57P")) or code == READ_ONLY))
    )


def translate(error: BaseException, *, during_commit: bool = False) -> Exception | None:
    """The application error for a database failure, or None if it is a real bug."""
    code = sqlstate(error)
    if code in _RETRYABLE:
        return StoreUnavailable(f"database refused for now ({code})")
    if code == UNIQUE_VIOLATION:
        return ConcurrentUpdate(str(getattr(error, "orig", error)))
    if is_connection_lost(error):
        return StoreUnavailable("database connection lost", outcome_known=not during_commit)
    if isinstance(error, asyncpg.InvalidCachedStatementError):
        # A migration changed a column a statement prepared before it returns: asyncpg
        # forgot the statement, so the next attempt prepares it again. Reads run
        # outside a transaction, where asyncpg does that itself; a batch runs again.
        return StoreUnavailable("the database's schema changed under a statement")
    if code is not None and code.startswith(_SERVER_TROUBLE):
        # An error the server answered with: a COMMIT that got one did not commit.
        _say(code, error)
        return StoreUnavailable(f"database refused for now ({code})")
    return None


def unreplicated(warning: str) -> None:
    """A COMMIT whose wait for the synchronous standby was cancelled (session.py:
    `replicated`), for the operator."""
    if _due("unreplicated"):
        logger.error(
            "a COMMIT's wait for the synchronous standby was cancelled (%s): committed on"
            " the primary alone; its keyed requests replay once the standby has it, the"
            " others are answered 503",
            warning,
        )


def _say(code: str, error: BaseException) -> None:
    """The server's own words, for the operator (the client's 503 has only the code)."""
    if _due(code):
        logger.error("PostgreSQL refused (SQLSTATE %s): %s; answering 503", code, error)


def _due(what: str) -> bool:
    """Once a minute for each thing said, not a line for every request while a disk
    stays full."""
    now = time.monotonic()
    if now - _said.get(what, -math.inf) < SAID_EVERY:
        return False
    _said[what] = now
    return True
