"""What each PostgreSQL failure becomes for the application: the request's own fault
(None: isolated, then answered as it is), a passing one (retried, then 503), or a
connection that must never be used again."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import cast

import asyncpg
import pytest

from adapters.postgres import errors
from adapters.postgres.errors import translate
from adapters.postgres.session import ListeningConnection, _keep_warning
from application.errors import ConcurrentUpdate, StoreUnavailable


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.DiskFullError("could not extend file"),  # 53100
        asyncpg.OutOfMemoryError("out of memory"),  # 53200
        asyncpg.TooManyConnectionsError("sorry, too many clients"),  # 53300
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),  # 57014
        asyncpg.PostgresIOError("could not read block"),  # 58030
    ],
    ids=type,
)
@pytest.mark.parametrize("during_commit", [False, True])
def test_the_server_s_own_trouble_is_a_503_whose_outcome_is_known(
    error: Exception, during_commit: bool
) -> None:
    """An error the server answered with: even a COMMIT that got one did not commit."""
    translated = translate(error, during_commit=during_commit)
    assert isinstance(translated, StoreUnavailable)
    assert translated.outcome_known
    assert str(translated) == f"database refused for now ({error.sqlstate})"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.CheckViolationError("violates check constraint"),  # 23514
        asyncpg.NumericValueOutOfRangeError("bigint out of range"),  # 22003
        asyncpg.InternalServerError("unexpected"),  # XX000
    ],
    ids=type,
)
def test_an_error_of_the_request_s_own_is_left_to_isolate(error: Exception) -> None:
    assert translate(error) is None


def test_the_others_keep_their_meaning() -> None:
    assert isinstance(translate(asyncpg.UniqueViolationError("")), ConcurrentUpdate)
    lost = translate(asyncpg.AdminShutdownError("terminating"), during_commit=True)  # 57P01
    assert isinstance(lost, StoreUnavailable)
    assert not lost.outcome_known


def test_the_server_s_words_are_logged_once_a_minute_a_code(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    said: dict[str, float] = {}
    monkeypatch.setattr(errors, "_said", said)
    with caplog.at_level(logging.ERROR, logger="balance.db"):
        translate(asyncpg.DiskFullError("could not extend file"))
        translate(asyncpg.DiskFullError("could not extend file"))
        translate(asyncpg.OutOfMemoryError("out of memory"))  # another code: said too
        said["53100"] -= errors.SAID_EVERY  # a minute later
        translate(asyncpg.DiskFullError("could not extend file"))
    assert [r.getMessage() for r in caplog.records] == [
        "PostgreSQL refused (SQLSTATE 53100): could not extend file; answering 503",
        "PostgreSQL refused (SQLSTATE 53200): out of memory; answering 503",
        "PostgreSQL refused (SQLSTATE 53100): could not extend file; answering 503",
    ]


def heard(*messages: asyncpg.PostgresLogMessage) -> str | None:
    """What a connection keeps of the messages its server sent."""
    connection = cast(ListeningConnection, SimpleNamespace(unreplicated=None))
    for message in messages:
        _keep_warning(connection, message)
    return connection.unreplicated


def warning(words: str, source: str, severity: str = "WARNING") -> asyncpg.PostgresLogMessage:
    return asyncpg.PostgresLogMessage.new(
        {"S": severity, "V": severity, "C": "01000", "M": words, "F": source}
    )


def test_only_the_warning_of_a_wait_for_the_standby_cancelled_is_kept() -> None:
    cancelled = "canceling wait for synchronous replication due to user request"
    near = 'database "balance" must be vacuumed within 9999999 transactions'
    assert heard(warning(cancelled, "syncrep.c")) == cancelled
    # Translated words, the same source file.
    assert heard(warning("Warten auf synchrone Replikation abgebrochen", "syncrep.c"))
    assert heard(warning(near, "varsup.c")) is None  # comes with a write, not a commit
    assert heard(warning("a notice", "syncrep.c", severity="NOTICE")) is None


def test_a_statement_prepared_before_a_schema_change_is_a_passing_failure() -> None:
    error = asyncpg.InvalidCachedStatementError("cached statement plan is invalid")
    translated = translate(error)
    assert isinstance(translated, StoreUnavailable)
    assert translated.outcome_known
    assert translate(asyncpg.FeatureNotSupportedError("not supported")) is None  # a bug
