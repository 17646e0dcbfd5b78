"""`balance verify` on a real ledger: every invariant holds on one that every kind of
movement wrote, and each way of breaking the ledger by hand (an edited balance, a
one-sided entry, a lost event...) is found by the checks it breaks, and only those,
naming what is wrong."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from litestar.testing import TestClient

from adapters.postgres.audit import CHECKS, _find, audit
from adapters.postgres.engine import create_engine, migrate
from adapters.postgres.movements import PostgresMovementBatch
from adapters.postgres.retention import prune_events, prune_idempotency_keys
from adapters.postgres.revisions import head_revision
from application.cancel import Cancel, cancel
from application.deposit import Deposit, deposit
from application.limits import SetLimits, set_limits
from application.move import Move, move
from application.recognize import Recognize, recognize
from application.reserve import Reserve, reserve
from application.runner import MoneyMovements
from application.transfer import Transfer, transfer
from application.withdraw import Withdraw, withdraw
from application.work import UseCase
from domain.movement import Leg
from entrypoints.container import build_app, build_container
from entrypoints.settings import Settings
from tests import postgres
from tests.helpers import keep, rub
from tests.ledger_view import PostgresLedgerView, check_invariants

pytestmark = pytest.mark.postgres

(
    SUMS,
    ENTRIES,
    BALANCES,
    BALANCE_AFTER,
    LIMITS,
    HELD,
    ORDERS,
    REVENUE,
    EVENTS,
    TOLD,
    PARTIES,
    TAGS,
    SAID,
    STAMPED,
    ANSWERS,
    REFUSED,
    PROBLEMS,
) = (check.name for check in CHECKS)


async def _write_every_kind(url: str) -> None:
    engine = create_engine(url, pool_size=2)
    movements = MoneyMovements(lambda: PostgresMovementBatch(engine))

    async def run(use_case: UseCase[Any, Any], command: Any) -> None:
        await movements.execute(use_case, command, keep, caller="billing")  # expiry: none

    try:
        for user, amount in ((1, "100"), (2, "50"), (3, "10")):
            await run(deposit, Deposit(user, rub(amount)))
        await run(withdraw, Withdraw(1, rub("20")))
        await run(transfer, Transfer(1, 2, rub("10"), metadata=(("app", "x"), ("order", "77"))))
        await run(reserve, Reserve(1, 7, 10, rub("30")))
        await run(recognize, Recognize(10, 1, 7, rub("25")))  # 5.00 goes back
        await run(reserve, Reserve(2, 7, 11, rub("20")))
        await run(cancel, Cancel(11, 2, 7))
        soon = datetime.now(UTC) + timedelta(hours=1)
        await run(reserve, Reserve(2, 8, 12, rub("5"), expires_at=soon))
        await postgres.make_due(url, 12)
        await movements.look_at(2, 12)  # expires
        await run(reserve, Reserve(3, 8, 13, rub("4")))  # stays open
        legs = [Leg(1, -rub("5")), Leg(2, rub("3")), Leg(4, rub("2"))]
        await run(move, Move.of(legs))
        await run(set_limits, SetLimits(3, rub("50"), frozen=False))
        await run(withdraw, Withdraw(3, rub("40")))  # 6.00 available: 34.00 owed
    finally:
        await engine.dispose()


# Requests under Idempotency-Keys, answered as the service answers them, for users 5 to
# 7 (so the rows above keep their ids): each kind of answer a retry is given.
KEYED: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("k-deposit", "POST", "/v1/deposits", {"user_id": 5, "amount": "100.00"}),
    (
        "k-transfer",
        "POST",
        "/v1/transfers",
        {"from_user_id": 5, "to_user_id": 6, "amount": "10.00", "metadata": {"invoice": "9"}},
    ),
    (
        "k-reserve",
        "POST",
        "/v1/reservations",
        {"user_id": 5, "service_id": 7, "order_id": 20, "amount": "20.00"},
    ),
    (  # the same reservation asked again under another key: 200, today's balances
        "k-reserve-again",
        "POST",
        "/v1/reservations",
        {"user_id": 5, "service_id": 7, "order_id": 20, "amount": "20.00"},
    ),
    (
        "k-recognize",
        "POST",
        "/v1/reservations/20/recognize",
        {"user_id": 5, "service_id": 7, "amount": "15.00"},
    ),
    (
        "k-movement",
        "POST",
        "/v1/movements",
        {"legs": [{"user_id": 5, "amount": "-5.00"}, {"user_id": 7, "amount": "5.00"}]},
    ),
    (
        "k-batch",
        "POST",
        "/v1/batches",
        {
            "operations": [
                {"op": "deposit", "user_id": 6, "amount": "1.00", "idempotency_key": "k-batch-1"},
                {"op": "withdrawal", "user_id": 6, "amount": "50.00"},  # 409
                {"op": "reserve", "user_id": 6, "service_id": 7, "order_id": 21, "amount": "0.50"},
                {"op": "cancel", "user_id": 6, "service_id": 7, "order_id": 21},
            ]
        },
    ),
    ("k-withdrawal", "POST", "/v1/withdrawals", {"user_id": 7, "amount": "1.00"}),
    (  # an operation under its own key, repeated: replayed, twice in one answer
        "k-batch-again",
        "POST",
        "/v1/batches",
        {
            "operations": [
                {"op": "deposit", "user_id": 6, "amount": "1.00", "idempotency_key": "k-batch-1"},
                {"op": "deposit", "user_id": 6, "amount": "1.00", "idempotency_key": "k-batch-1"},
                {"op": "deposit", "user_id": 7, "amount": "2.00"},
            ]
        },
    ),
)


# Requests under keys, refused: each key holds its refusal, and only that.
REFUSED_KEYED: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("k-refused", "POST", "/v1/withdrawals", {"user_id": 7, "amount": "1000.00"}),
    (
        "k-atomic",
        "POST",
        "/v1/batches",
        {
            "atomic": True,
            "operations": [
                {"op": "deposit", "user_id": 7, "amount": "1.00", "idempotency_key": "k-atomic-1"},
                {
                    "op": "withdrawal",
                    "user_id": 7,
                    "amount": "1000.00",
                    "idempotency_key": "k-atomic-2",
                },
            ],
        },
    ),
)
KEYS = len(KEYED) + 1 + len(REFUSED_KEYED) + 2
"""Every key stored: the requests' and their operations' own."""


def _answer_over_http(url: str) -> None:
    settings = Settings.from_env({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
    with TestClient(build_app(settings, build_container(settings))) as client:
        for key, method, path, body in KEYED:
            answer = client.request(method, path, json=body, headers={"Idempotency-Key": key})
            assert answer.status_code in (200, 201), answer.text
        for key, method, path, body in REFUSED_KEYED:
            answer = client.request(method, path, json=body, headers={"Idempotency-Key": key})
            assert answer.status_code == 409, answer.text


@pytest.fixture(scope="module")
def healthy(pg_server: str) -> Iterator[str]:
    """A ledger every kind of movement wrote: the template each case copies."""
    name = postgres.unique_name()

    async def build() -> None:
        url = await postgres.create_database(pg_server, name)
        await migrate(url)
        await _write_every_kind(url)

    asyncio.run(build())
    _answer_over_http(postgres.with_database(pg_server, name))
    yield name
    asyncio.run(postgres.drop_database(pg_server, name))


@pytest.fixture
async def copy(pg_server: str, healthy: str) -> AsyncIterator[str]:
    name = postgres.unique_name()
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{healthy}"')
    finally:
        await admin.close()
    yield postgres.with_database(pg_server, name)
    await postgres.drop_database(pg_server, name)


async def test_a_ledger_every_kind_of_movement_wrote_holds_every_invariant(copy: str) -> None:
    check_invariants(await PostgresLedgerView(copy).snapshot())  # the tests' own oracle
    found = await audit(copy)
    assert [(f.check, f.broken) for f in found.findings] == [(c.name, 0) for c in CHECKS]
    assert found.holds
    assert (found.accounts, found.transactions, found.entries) == (7, 24, 53)


def _copy_answer(key: str, to: str) -> str:
    """A statement storing the answer stored under `key` under another key, `to`."""
    return (
        "INSERT INTO idempotency_keys (key, fingerprint, status, body)"
        f" SELECT '{to}', fingerprint, status, body FROM idempotency_keys WHERE key = '{key}'"
    )


def _edit_answer(key: str, was: str, becomes: str) -> str:
    """A statement changing the answer stored under `key` (JSON text `was` into `becomes`)."""
    assert "'" not in was + becomes
    return (
        "UPDATE idempotency_keys SET body = convert_to(replace(convert_from(body, 'UTF8'),"
        f" '{was}', '{becomes}'), 'UTF8') WHERE key = '{key}'"
        f" AND position('{was}' IN convert_from(body, 'UTF8')) > 0"
    )


# What a hand (or a bug) does to the stored rows, and which checks must name what.
BREAKS = {
    "an account's balance edited": (
        ["UPDATE accounts SET available = available + 100 WHERE user_id = 2"],
        {BALANCES: "user 2", EVENTS: "user 2"},
    ),
    "an entry on one side only": (
        [
            "INSERT INTO entries (transaction_id, account, kind, user_id, amount, balance_after,"
            " created_at) SELECT 1, 'available', 'deposit', 1, 100, available + 100, now()"
            " FROM accounts WHERE user_id = 1"
        ],
        {SUMS: "transaction 1", BALANCES: "user 1", SAID: "event 1"},
    ),
    "a transaction with no entries": (
        ["INSERT INTO transactions (kind, user_id) VALUES ('deposit', 1)"],
        {ENTRIES: "transaction 30"},
    ),
    "entries of no transaction": (
        [
            "INSERT INTO entries (transaction_id, account, kind, amount, created_at)"
            " VALUES (999, 'external', 'deposit', 1, now()),"
            " (999, 'external', 'deposit', -1, now())"
        ],
        {ENTRIES: "transaction 999"},
    ),
    "a balance_after edited": (
        [
            "ALTER TABLE entries DISABLE TRIGGER entries_append_only",
            "UPDATE entries SET balance_after = balance_after + 1 WHERE id = (SELECT min(id)"
            " FROM entries WHERE user_id = 1 AND account = 'available')",
        ],
        {BALANCE_AFTER: "entry 2"},
    ),
    "a reservation closed by hand": (
        ["UPDATE reservations SET status = 'cancelled', closed_at = now() WHERE order_id = 13"],
        {HELD: "user 3", ORDERS: "order 13"},
    ),
    "a recognized amount edited": (
        ["UPDATE reservations SET recognized_amount = 3000 WHERE order_id = 10"],
        {REVENUE: "service 7"},
    ),
    "a debt past the credit limit": (
        [
            "ALTER TABLE accounts DROP CONSTRAINT accounts_available_within_limit",
            "UPDATE accounts SET available = -6000 WHERE user_id = 3",
        ],
        {LIMITS: "user 3", BALANCES: "user 3", EVENTS: "user 3"},
    ),
    "an event naming another movement": (
        [
            "UPDATE events SET transaction_id = 1 WHERE event_id = (SELECT max(event_id)"
            " FROM events WHERE user_id = 1 AND transaction_id IS NOT NULL)"
        ],
        {TOLD: "user 1", SAID: "event 14"},
    ),
    "a transfer's counterparty edited": (
        [
            "ALTER TABLE transactions DISABLE TRIGGER transactions_append_only",
            "UPDATE transactions SET counterparty_user_id = 3 WHERE id = 5",
        ],
        {PARTIES: "transaction 5"},
    ),
    "an order's service edited": (
        [
            "ALTER TABLE transactions DISABLE TRIGGER transactions_append_only",
            "UPDATE transactions SET service_id = 8 WHERE id = 7",
        ],
        {PARTIES: "transaction 7"},
    ),
    "a movement's first leg edited": (
        [
            "ALTER TABLE transactions DISABLE TRIGGER transactions_append_only",
            # legs of users 1, 2 and 4: user 2 is its second leg's
            "UPDATE transactions SET user_id = 2 WHERE id = 13",
        ],
        {PARTIES: "transaction 13"},
    ),
    "a tag lost": (
        ["DELETE FROM transaction_tags WHERE user_id = 2 AND tag = 'order=77'"],
        {TAGS: "transaction 5"},
    ),
    "a tag of a pair not carried": (
        [
            "INSERT INTO transaction_tags SELECT 1, 'order=78', created_at, id FROM transactions"
            " WHERE id = 5"
        ],
        {TAGS: "transaction 5"},
    ),
    "an event's delta edited": (
        [
            "UPDATE events SET reserved_delta = reserved_delta + 1"
            " WHERE user_id = 1 AND user_seq = 4"
        ],
        {SAID: "event 7"},
    ),
    "an event's balance edited": (
        ["UPDATE events SET available = available - 1 WHERE user_id = 1 AND user_seq = 1"],
        {SAID: "event 4"},  # user 1's second event does not follow it
    ),
    "an event's amount edited": (
        ["UPDATE events SET amount = amount + 1 WHERE user_id = 1 AND user_seq = 5"],
        {SAID: "event 8"},
    ),
    "an event's type edited": (
        ["UPDATE events SET type = 'transfer_in' WHERE user_id = 1 AND user_seq = 3"],
        {SAID: "event 5"},
    ),
    "an event naming another caller": (
        ["UPDATE events SET caller = 'someone' WHERE user_id = 2 AND user_seq = 2"],
        {SAID: "event 6"},
    ),
    "a movement written without its event": (
        [
            "WITH t AS (INSERT INTO transactions (kind, user_id) VALUES ('deposit', 4)"
            " RETURNING id) INSERT INTO entries (transaction_id, account, kind, user_id,"
            " amount, balance_after, created_at) SELECT t.id, 'available', 'deposit', 4, 100,"
            " a.available + 100, now() FROM t, accounts AS a WHERE a.user_id = 4"
            " UNION ALL SELECT t.id, 'external', 'deposit', NULL, -100, NULL, now() FROM t",
            "UPDATE accounts SET available = available + 100 WHERE user_id = 4",
        ],
        {EVENTS: "user 4", TOLD: "user 4"},
    ),
    "an entry stamped before the one before it": (
        [
            "ALTER TABLE entries DISABLE TRIGGER entries_append_only",
            "UPDATE entries SET created_at = created_at - interval '1 hour' WHERE id = (SELECT"
            " max(id) FROM entries WHERE user_id = 2)",
        ],
        {STAMPED: "entry 28"},
    ),
    "a stored answer's balance edited": (
        [_edit_answer("k-transfer", '"available":"10.00"', '"available":"11.00"')],
        {ANSWERS: "key k-transfer"},
    ),
    "a first reserve's answer with the balances of before it": (
        [_edit_answer("k-reserve", '"reserved":"20.00"', '"reserved":"0.00"')],
        {ANSWERS: "key k-reserve"},
    ),
    "a second key answered with the same movement": (
        [
            "INSERT INTO idempotency_keys (key, fingerprint, status, body) SELECT 'k-later',"
            " fingerprint, status, body FROM idempotency_keys WHERE key = 'k-deposit'"
        ],
        {ANSWERS: "key k-later"},
    ),
    "an answer naming a movement not recorded": (
        [_edit_answer("k-withdrawal", '{"transaction_id":', '{"transaction_id":99')],
        {ANSWERS: "key k-withdrawal"},
    ),
    "an operation's answer in a batch's answer edited": (
        [_edit_answer("k-batch", '"amount":"1.00"', '"amount":"2.00"')],
        {ANSWERS: "key k-batch"},
    ),
    "an order's answer naming another recognized amount": (
        [_edit_answer("k-recognize", '"recognized_amount":"15.00"', '"recognized_amount":"16.00"')],
        {ANSWERS: "key k-recognize"},
    ),
    "a movement's answer with the metadata of another": (
        [_edit_answer("k-movement", '"metadata":{}', '"metadata":{"invoice":"9"}')],
        {ANSWERS: "key k-movement"},
    ),
    "an operation without a key claimed by a second batch's answer": (
        [_copy_answer("k-batch-again", "k-batch-copy")],
        {ANSWERS: "key k-batch-copy"},
    ),
    "a second key told its reserve made the reservation": (
        [_copy_answer("k-reserve", "k-reserve-copy")],
        {ANSWERS: "key k-reserve-copy"},
    ),
    "an order reserved without a key claimed by a second batch's answer": (
        [_copy_answer("k-batch", "k-batch-copy")],
        {ANSWERS: "key k-batch-copy"},
    ),
    "a stored answer that is not JSON": (
        ["UPDATE idempotency_keys SET body = '{\"transaction_id\":' WHERE key = 'k-deposit'"],
        {ANSWERS: "key k-deposit"},
    ),
    "a key answered with a refusal after it moved money": (
        [
            "UPDATE idempotency_keys SET status = 409, body = (SELECT body FROM"
            " idempotency_keys WHERE key = 'k-refused') WHERE key = 'k-withdrawal'"
        ],
        {REFUSED: "key k-withdrawal"},
    ),
    "a key storing a server's error": (
        ["UPDATE idempotency_keys SET status = 503 WHERE key = 'k-refused'"],
        {PROBLEMS: "key k-refused"},
    ),
    "a stored refusal that is not JSON": (
        ["UPDATE idempotency_keys SET body = '{' WHERE key = 'k-refused'"],
        {PROBLEMS: "key k-refused"},
    ),
    "a stored refusal whose problem says another status": (
        [_edit_answer("k-atomic-2", '"status":409', '"status":404')],
        {PROBLEMS: "key k-atomic-2"},
    ),
    "a stored answer whose amount is not a number": (
        [_edit_answer("k-withdrawal", '"amount":"1.00"', '"amount":"one"')],
        {ANSWERS: "a row"},  # the other checks run on
    ),
    "an event lost": (
        [
            "DELETE FROM events WHERE event_id = (SELECT min(event_id) FROM events"
            " WHERE user_id = 1 AND user_seq = 2)"
        ],
        {EVENTS: "user 1", TOLD: "user 1"},
    ),
}


@pytest.mark.parametrize("case", sorted(BREAKS))
async def test_each_break_is_found_by_the_checks_it_breaks_and_only_those(
    copy: str, case: str
) -> None:
    statements, expected = BREAKS[case]
    connection = await asyncpg.connect(copy)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()
    found = await audit(copy)
    broken = {f.check: [subject for subject, _ in f.examples] for f in found.findings if f.broken}
    assert broken == {check: [subject] for check, subject in expected.items()}, found
    assert not found.holds


async def test_a_stored_answer_it_cannot_read_is_named_with_why(copy: str) -> None:
    connection = await asyncpg.connect(copy)
    try:
        await connection.execute(_edit_answer("k-withdrawal", '"amount":"1.00"', '"amount":"one"'))
        typed = await audit(copy)
        await connection.execute("UPDATE idempotency_keys SET body = '[1]' WHERE key = 'k-deposit'")
        await connection.execute("UPDATE idempotency_keys SET body = '{' WHERE key = 'k-transfer'")
        parsed = await audit(copy)
    finally:
        await connection.close()
    (finding,) = [f for f in typed.findings if f.broken]
    assert finding.examples == (
        ("a row", 'cannot be read: invalid input syntax for type numeric: "one"'),
    )
    (finding,) = [f for f in parsed.findings if f.broken]
    assert finding.broken == 1  # '[1]' is no answer the check reads: not an object
    assert finding.examples == (
        ("key k-transfer", "its stored answer is not JSON: Input data was truncated"),
    )


async def test_a_checks_planner_settings_end_with_it(copy: str) -> None:
    tuned = [check for check in CHECKS if check.planner]
    assert [check.name for check in tuned] == [ANSWERS, REFUSED]
    connection = await asyncpg.connect(copy)
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            for check in tuned:
                assert (await _find(connection, check, 5)).broken == 0
                assert await connection.fetchval("SHOW enable_nestloop") == "on"
                assert await connection.fetchval("SHOW jit") == "on"
    finally:
        await connection.close()


async def test_events_pruned_as_prune_events_does_are_no_break(copy: str) -> None:
    """The broker confirmed the first seven events and they are two days old: pruned,
    they leave the stored events of users 1, 2 and 3 starting past user_seq 1."""
    connection = await asyncpg.connect(copy)
    try:
        await connection.execute("UPDATE event_relay SET sent_upto = 7")
        await connection.execute(
            "UPDATE events SET created_at = created_at - interval '2 days' WHERE event_id <= 7"
        )
    finally:
        await connection.close()
    assert await prune_events(copy, timedelta(days=1)) == 7
    found = await audit(copy)
    assert found.holds, [f for f in found.findings if f.broken]


async def _shift_events(url: str, by: timedelta, user_ids: tuple[int, ...] | None = None) -> None:
    """Move the stored events' times (of these users; None: all) by `by`."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "UPDATE events SET created_at = created_at + $1"
            " WHERE $2::bigint[] IS NULL OR user_id = ANY($2::bigint[])",
            by,
            user_ids,
        )
    finally:
        await connection.close()


async def test_events_pruned_after_the_clock_stepped_back_leave_each_user_its_latest(
    copy: str,
) -> None:
    """The old primary's clock ran three days ahead: users 1 to 7's ledger so far was
    written three days ahead. After a failover to a server with the right clock, user
    8, who is new, is stamped at the clock's time, but user 2's deposit and a transfer
    from 1 to 8 are stamped no earlier than their rows' `updated_at`, three days
    ahead (README, decision 10). Five days on, `prune-events --days 3` forgets user
    8's first event alone: each user keeps its latest events, and `verify` finds no
    gap. Stamped by the plain clock, user 2's deposit would be older than the events
    before it, and pruned without them."""
    ahead = timedelta(days=3)
    await postgres.written_ahead(copy, ahead, tuple(range(1, 8)))
    await _shift_events(copy, ahead)
    engine = create_engine(copy, pool_size=1)
    movements = MoneyMovements(lambda: PostgresMovementBatch(engine))
    try:
        for command in (Deposit(8, rub("10")), Deposit(2, rub("1"))):
            await movements.execute(deposit, command, keep)
        await movements.execute(transfer, Transfer(1, 8, rub("1")), keep)
    finally:
        await engine.dispose()
    connection = await asyncpg.connect(copy)
    try:
        times = await connection.fetch("SELECT event_id, user_id, created_at FROM events")
        last = max(row["event_id"] for row in times)
        await connection.execute("UPDATE event_relay SET sent_upto = $1", last)
        for table in ("entries", "transactions"):
            await connection.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
            await connection.execute(
                f"UPDATE {table} SET created_at = created_at - interval '5 days'"
            )
            await connection.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
        await connection.execute(
            "UPDATE transaction_tags SET created_at = created_at - interval '5 days'"
        )
        await connection.execute("UPDATE accounts SET updated_at = updated_at - interval '5 days'")
        await connection.execute(  # stored at the clock's time, before the failover
            "UPDATE idempotency_keys SET created_at = created_at - interval '5 days'"
        )
    finally:
        await connection.close()
    await _shift_events(copy, -timedelta(days=5))  # five days on
    # the keys' answers (their times are not moved ahead here) are past a 3-day window
    assert await prune_idempotency_keys(copy, timedelta(days=3)) == KEYS
    first_of_new = min(row["event_id"] for row in times if row["user_id"] == 8)
    stamped = {row["event_id"]: row["created_at"] for row in times}
    assert stamped[first_of_new] < stamped[first_of_new - 1]  # the clock did step back
    assert await prune_events(copy, timedelta(days=3)) == 1
    connection = await asyncpg.connect(copy)
    try:
        kept = {row["event_id"] for row in await connection.fetch("SELECT event_id FROM events")}
    finally:
        await connection.close()
    assert kept == set(stamped) - {first_of_new}
    found = await audit(copy)
    assert found.holds, [f for f in found.findings if f.broken]


def _verify(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_command_says_what_is_broken_and_exits_1(copy: str) -> None:
    fine = await asyncio.to_thread(_verify, copy)
    assert fine.returncode == 0, fine.stderr
    assert fine.stdout.count("\nok      ") == len(CHECKS)
    connection = await asyncpg.connect(copy)
    try:
        await connection.execute("UPDATE accounts SET reserved = 0 WHERE user_id = 3")
    finally:
        await connection.close()
    broken = await asyncio.to_thread(_verify, copy)
    assert broken.returncode == 1, broken.stderr
    named = "user 3: reserved 0.00, its open reservations sum to 4.00"
    assert f"BROKEN  {HELD}: 1\n          {named}\n" in broken.stdout


def test_a_ledger_it_cannot_read_is_exit_2() -> None:
    unreachable = _verify("postgresql://postgres@127.0.0.1:9/none")
    assert unreachable.returncode == 2
    assert "verify could not read the ledger" in unreachable.stderr


async def test_a_schema_behind_its_checks_is_exit_2_and_one_ahead_is_checked_with_a_note(
    copy: str,
) -> None:
    """Behind: the checks would read columns it may not have (a 0011 schema has no
    `caller`), so it says so rather than failing on one. Ahead (a later version's):
    what this code knows is checked, and the output says the newer rules are not."""
    connection = await asyncpg.connect(copy)
    try:
        await connection.execute("UPDATE alembic_version SET version_num = '0011'")
        behind = await asyncio.to_thread(_verify, copy)
        await connection.execute("UPDATE alembic_version SET version_num = '0099_later'")
        ahead = await asyncio.to_thread(_verify, copy)
    finally:
        await connection.close()
    assert behind.returncode == 2
    assert behind.stdout == ""
    assert behind.stderr.startswith(
        f"balance: verify: the schema is at 0011, and these checks are for {head_revision()}"
    )
    assert ahead.returncode == 0, ahead.stderr
    assert "entries (schema 0099_later)\nnote    the schema is a later version's" in ahead.stdout
    assert ahead.stdout.count("\nok      ") == len(CHECKS)
