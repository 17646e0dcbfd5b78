"""PostgreSQL failures translated to what the application can act on."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from application.errors import ConcurrentUpdate, StoreUnavailable

SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"
UNIQUE_VIOLATION = "23505"
LOCK_NOT_AVAILABLE = "55P03"
READ_ONLY = "25006"
_RETRYABLE = {SERIALIZATION_FAILURE, DEADLOCK_DETECTED, LOCK_NOT_AVAILABLE}


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
    return None
