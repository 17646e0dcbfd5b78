"""pgbench scripts that run the service's own SQL: the ceiling for each scenario.

Each script is built from the very statements the PostgreSQL adapter compiles
(adapters/postgres/uow.py), in the order a request issues them, with the $n
parameters replaced by pgbench variables. Only the values differ: the balances
written are constants (the service computes them in Python between statements),
which is the same work for the database.
"""

from __future__ import annotations

import re

from adapters.postgres import uow
from adapters.postgres.sql import Sql, compile_sql
from adapters.postgres.statements import page_statement
from application.statement_query import StatementQuery

BIG = 100_000_000_000  # the seeded balance, in kopecks
FINGERPRINT = "'" + "f" * 64 + "'"
KEY = "('pgb-' || :client_id || '-' || :seq)"
BODY = "'\\x" + "7b" * 180 + "'::bytea"  # a stored answer is about 180 bytes


def bigints(*values: object) -> str:
    return "ARRAY[" + ", ".join(str(v) for v in values) + "]::bigint[]"


def texts(*values: str) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]::text[]"


def bind(sql: Sql, **values: object) -> str:
    """The statement's text with each $n replaced by the value given for its name."""

    def value(match: re.Match[str]) -> str:
        name = sql.names[int(match.group(1)) - 1]
        if name in values:
            return str(values[name])
        constant = sql.bound[name]  # a value written into the statement itself
        return f"'{constant}'" if isinstance(constant, str) else str(constant)

    return re.sub(r"\$(\d+)", value, sql.text).strip()


def command(statement: str) -> str:
    """A multi-line SQL command for pgbench: one line, ended by a semicolon."""
    return " ".join(statement.split()) + ";"


def claimed_and_completed(*body: str, status: int = 201, compound: bool = False) -> str:
    """BEGIN, the key's claim, `body`, the key's answer, COMMIT. `compound` sends
    BEGIN with the claim and the answer with COMMIT, one message each, as the
    service does (pgbench can only do that in -M simple)."""
    claim = uow._CLAIM_KEY.format(key=KEY, fingerprint=FINGERPRINT)
    answer = uow._COMPLETE_KEY.format(status=status, body="7b" * 180, key=KEY)
    head = [f"BEGIN\\; {claim};"] if compound else ["BEGIN;", f"{claim};"]
    tail = [f"{answer}\\; COMMIT;"] if compound else [f"{answer};", "COMMIT;"]
    lines = ["\\set seq random(1, 9000000000000000000)", *head, *body, *tail]
    return "\n".join(lines) + "\n"


def record(**values: object) -> str:
    defaults: dict[str, object] = {
        "counterparty_user_id": "NULL::bigint",
        "service_id": "NULL::bigint",
        "order_id": "NULL::bigint",
        "description": "NULL::text",
    }
    return command(bind(uow._RECORD, **(defaults | values)))


def lock(*ids: str) -> str:
    return command(bind(uow._LOCK_ACCOUNTS, ids=bigints(*ids)))


def deposit(uid: str = ":uid", compound: bool = False) -> str:
    return claimed_and_completed(
        lock(uid),
        record(
            save_ids=bigints(uid),
            save_available=bigints(BIG),
            save_reserved=bigints(0),
            kind="'deposit'",
            user_id=f"{uid}::bigint",
            accounts=texts("external", "available"),
            kinds=texts("deposit", "deposit"),
            user_ids=bigints("NULL", uid),
            service_ids=bigints("NULL", "NULL"),
            amounts=bigints(-100, 100),
            balances=bigints("NULL", BIG),
        ),
        compound=compound,
    )


def transfer(sender: str = ":a", receiver: str = ":b", compound: bool = False) -> str:
    return claimed_and_completed(
        lock(sender, receiver),
        record(
            save_ids=bigints(sender, receiver),
            save_available=bigints(BIG, BIG),
            save_reserved=bigints(0, 0),
            kind="'transfer'",
            user_id=f"{sender}::bigint",
            counterparty_user_id=f"{receiver}::bigint",
            accounts=texts("available", "available"),
            kinds=texts("transfer_out", "transfer_in"),
            user_ids=bigints(sender, receiver),
            service_ids=bigints("NULL", "NULL"),
            amounts=bigints(-100, 100),
            balances=bigints(BIG, BIG),
        ),
        compound=compound,
    )


def reserve_then_recognize(compound: bool = False) -> str:
    order = {"order_id": ":oid::bigint"}
    reserve = claimed_and_completed(
        command(bind(uow._GET_RESERVATION, **order)),
        lock(":uid"),
        record(
            save_ids=bigints(":uid"),
            save_available=bigints(BIG),
            save_reserved=bigints(100),
            kind="'reserve'",
            user_id=":uid::bigint",
            service_id="7::bigint",
            order_id=":oid::bigint",
            accounts=texts("available", "reserved"),
            kinds=texts("reserve", "reserve"),
            user_ids=bigints(":uid", ":uid"),
            service_ids=bigints("NULL", "NULL"),
            amounts=bigints(-100, 100),
            balances=bigints(BIG, 100),
        ),
        command(
            bind(
                uow._ADD_RESERVATION,
                **order,
                user_id=":uid::bigint",
                service_id="7::bigint",
                amount=100,
                status="'reserved'",
                created_at="clock_timestamp()",
            )
        ),
        compound=compound,
    )
    recognize = claimed_and_completed(
        command(bind(uow._LOCK_RESERVATION, **order)),
        lock(":uid"),
        record(
            save_ids=bigints(":uid"),
            save_available=bigints(BIG),
            save_reserved=bigints(0),
            kind="'recognize'",
            user_id=":uid::bigint",
            service_id="7::bigint",
            order_id=":oid::bigint",
            accounts=texts("reserved", "revenue"),
            kinds=texts("recognize", "recognize"),
            user_ids=bigints(":uid", "NULL"),
            service_ids=bigints("NULL", 7),
            amounts=bigints(-100, 100),
            balances=bigints(0, "NULL"),
        ),
        command(
            bind(
                uow._CLOSE_RESERVATION,
                **order,
                status="'recognized'",
                recognized_amount=100,
                closed_at="clock_timestamp()",
            )
        ),
        status=200,
        compound=compound,
    )
    return "\\set oid random(1, 9000000000000000000)\n" + reserve + recognize


# Reads open no transaction (READ COMMITTED: a snapshot per statement anyway).
def balance() -> str:
    return command(bind(uow._GET_ACCOUNT, user_id=":uid::bigint")) + "\n"


def statement_page() -> str:
    sentinel = 987654321987
    page = compile_sql(page_statement(StatementQuery(sentinel, limit=20)))
    values = {n: (":uid::bigint" if v == sentinel else v) for n, v in page.bound.items()}
    get = command(bind(uow._GET_ACCOUNT, user_id=":uid::bigint"))
    return f"{get}\n{command(bind(page, **values))}\n"


UID = "\\set uid random(1, :users)\n"
PAIR = "\\set a random(1, :users)\n\\set b (:a % :users) + 1\n"


def scripts(compound: bool = False) -> dict[str, list[tuple[str, str]]]:
    """Scenario -> [(script text, weight)] (pgbench -f file@weight).

    compound=True: the service's exact messages (BEGIN with the claim, the answer
    with COMMIT), which pgbench can send only in -M simple (nothing prepared);
    False: each statement on its own, prepared. The ceiling is the faster one.
    """
    c = compound
    return {
        "deposit": [(UID + deposit(compound=c), "1")],
        "reserve+recognize": [(UID + reserve_then_recognize(compound=c), "1")],
        "transfer": [(PAIR + transfer(compound=c), "1")],
        "hot user": [
            (deposit("1", compound=c), "1"),
            ("\\set b random(2, :users)\n" + transfer("1", ":b", compound=c), "1"),
        ],
        "balance": [(UID + balance(), "1")],
        "statement page": [(UID + statement_page(), "1")],
    }
