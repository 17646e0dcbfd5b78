"""After a bank run: the invariants, checked in SQL and through the API."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg
import httpx

from adapters.postgres.audit import audit
from tests.bank.workload import CALLER, Operation, Run, bearer
from tests.events_check import pulled, story_problems
from tests.ledger_view import LedgerSnapshot, PostgresLedgerView, check_invariants


def kopecks(amount: str) -> int:
    return int(Decimal(amount) * 100)


@dataclass
class Verdict:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    async def check(self, name: str, test: Callable[[], Awaitable[list[str]]]) -> None:
        try:
            problems = await test()
        except AssertionError as error:
            problems = [f"{type(error).__name__}: {error}"]
        if problems:
            self.failed.append(name)
            self.failures.extend(f"{name}: {p}" for p in problems[:20])
        else:
            self.passed.append(name)


async def verify(
    run: Run,
    database_url: str,
    base_url: str,
    replays: int = 300,
    *,
    refusals_stored: bool = True,
) -> Verdict:
    """`refusals_stored`: whether every server of the run stored its keyed refusals, so
    that a refused key replays its refusal (not so for a version before af9cbaf: sent
    again, such a key runs again, and may move money)."""
    ledger = await PostgresLedgerView(database_url).snapshot()
    db = await asyncpg.connect(database_url)
    try:
        transactions = await db.fetch(
            "SELECT id, kind, description, order_id FROM transactions ORDER BY id"
        )
        callers = await db.fetch(
            "SELECT 'transaction' AS what, kind, caller, count(*) FROM transactions"
            " GROUP BY kind, caller"
            " UNION ALL SELECT 'event', v.type, v.caller, count(*) FROM events AS v"
            " LEFT JOIN transactions AS t ON t.id = v.transaction_id"
            " WHERE v.transaction_id IS NOT NULL AND v.caller IS DISTINCT FROM t.caller"
            " GROUP BY v.type, v.caller"
        )
    finally:
        await db.close()
    verdict = Verdict()

    async def invariants() -> list[str]:
        check_invariants(ledger)
        return []

    async def sums_to_zero() -> list[str]:
        total = sum(e.amount for e in ledger.entries)
        return [] if total == 0 else [f"all accounts sum to {total}"]

    async def movements_once() -> list[str]:
        return movements_in_ledger(run.operations, transactions)

    async def reservations_closed_as_answered() -> list[str]:
        return reservations_match(run.operations, ledger, transactions)

    async def through_the_api() -> list[str]:
        async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=bearer()) as api:
            return await api_agrees(api, ledger)

    async def events_tell_the_story() -> list[str]:
        users: dict[int, set[int]] = defaultdict(set)
        for e in ledger.entries:
            if e.user_id is not None:
                users[e.transaction_id].add(e.user_id)
        async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=bearer()) as api:
            return story_problems(await pulled(api), ledger.accounts, dict(users))

    async def replays_answer_the_same() -> list[str]:
        async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=bearer()) as api:
            return await replayed(api, run.operations, replays, refusals_stored)

    async def each_names_its_caller() -> list[str]:
        # Every movement the bank sent names it, whichever token carried it; an expiry
        # is the service's own (none); every event names its transaction's caller.
        return [
            f"{row['count']} {row['what']}s of kind {row['kind']} name {row['caller']!r}"
            for row in callers
            if row["what"] == "event"
            or row["caller"] != (None if row["kind"] == "expire" else CALLER)
        ]

    await verdict.check(
        "ledger invariants (double entry, no balance below 0, reserved = open"
        " reservations, replaying entries rebuilds every balance_after and balance,"
        " each reservation closed at most once)",
        invariants,
    )
    await verdict.check("the sum of all accounts is 0", sums_to_zero)
    await verdict.check(
        "acknowledged movements are in the ledger exactly once, refused ones never,"
        " unacknowledged ones at most once",
        movements_once,
    )
    await verdict.check(
        "every answered reserve, recognize and cancel matches its reservation",
        reservations_closed_as_answered,
    )
    await verdict.check("the API's balances and statements agree with the ledger", through_the_api)
    await verdict.check(
        "events (pull API): ids 1..N in commit order, user_seq without gaps, balances"
        " continuous and ending at the ledger's, one per user of every transaction",
        events_tell_the_story,
    )
    await verdict.check(
        "replaying answered keys returns the first answer, a refusal's too",
        replays_answer_the_same,
    )

    async def the_service_verifies_it() -> list[str]:
        found = await audit(database_url)
        return [f"{f.check}: {f.broken}, e.g. {f.examples}" for f in found.findings if f.broken]

    await verdict.check("`balance verify` finds every invariant holding", the_service_verifies_it)
    await verdict.check(
        "every movement and event names the caller whose token sent it (the bank's two"
        " tokens, one name), an expiry none",
        each_names_its_caller,
    )
    return verdict


def movements_in_ledger(
    operations: list[Operation], transactions: list[asyncpg.Record]
) -> list[str]:
    found: dict[str, list[int]] = defaultdict(list)
    for t in transactions:
        if t["description"] and t["description"].startswith("bank "):
            found[t["description"]].append(t["id"])
    problems = []
    described = {op.description: op for op in operations if op.description}
    for description, ids in found.items():
        if description not in described:
            problems.append(f"transaction(s) {ids} belong to no operation sent: {description}")
    for description, op in described.items():
        ids = found.get(description, [])
        if op.outcome == "ok":
            if len(ids) != 1:
                problems.append(f"acknowledged {op.kind} {op.key} is in the ledger {len(ids)}x")
            elif op.response and op.response.get("transaction_id", ids[0]) != ids[0]:
                problems.append(f"{op.key} answered {op.response} but wrote {ids[0]}")
        elif op.outcome == "refused" and ids:
            said = op.response or {}
            problems.append(
                f"refused {op.kind} {op.key} ({op.status} {said.get('type')}:"
                f" {said.get('detail')}; {op.attempts} attempt(s)) wrote {ids}"
            )
        elif len(ids) > 1:
            problems.append(f"unacknowledged {op.kind} {op.key} is in the ledger {len(ids)}x")
    return problems


def reservations_match(
    operations: list[Operation], ledger: LedgerSnapshot, transactions: list[asyncpg.Record]
) -> list[str]:
    reservations = {r.order_id: r for r in ledger.reservations}
    closings: dict[int, int] = defaultdict(int)
    for t in transactions:
        if t["kind"] in ("recognize", "cancel"):
            closings[t["order_id"]] += 1
    problems = [f"order {o} closed {n} times" for o, n in closings.items() if n > 1]
    for op in operations:
        order_id = op.order_id
        if order_id is None or op.outcome == "unknown":
            continue
        row = reservations.get(order_id)
        if op.kind == "reserve":
            if op.outcome == "refused":
                if row is not None:
                    problems.append(f"refused reserve {op.key} left reservation {row}")
                continue
            expected = (op.body["user_id"], op.body["service_id"], kopecks(op.body["amount"]))
            if row is None or (row.user_id, row.service_id, row.amount) != expected:
                problems.append(f"reserve {op.key} answered ok, reservation is {row}")
        elif op.outcome == "ok":
            if row is None:
                problems.append(f"{op.kind} {op.key} answered ok for a missing order {order_id}")
            elif op.kind == "cancel" and row.status != "cancelled":
                problems.append(f"cancel {op.key} answered ok, reservation is {row}")
            elif op.kind == "recognize" and (
                row.status != "recognized" or row.recognized_amount != kopecks(op.body["amount"])
            ):
                problems.append(f"recognize {op.key} answered ok, reservation is {row}")
    return problems


async def api_agrees(api: httpx.AsyncClient, ledger: LedgerSnapshot) -> list[str]:
    problems = []
    entries_per_user: dict[int, int] = defaultdict(int)
    for e in ledger.entries:
        if e.user_id is not None:
            entries_per_user[e.user_id] += 1
    for user_id, (available, reserved) in sorted(ledger.accounts.items()):
        answer = await api.get(f"/v1/users/{user_id}/balance")
        if answer.status_code != 200:  # say what came back, not a KeyError
            problems.append(f"user {user_id}: balance answered {answer.status_code} {answer.text}")
            continue
        balance = answer.json()
        shown = (kopecks(balance["available"]), kopecks(balance["reserved"]))
        if shown != (available, reserved):
            problems.append(f"user {user_id}: API shows {shown}, ledger has {available, reserved}")
        replay = {"available": 0, "reserved": 0}
        seen = 0
        cursor = None
        while True:
            params: dict[str, str | int] = {"order": "asc", "limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = (await api.get(f"/v1/users/{user_id}/transactions", params=params)).json()
            for item in page["items"]:
                seen += 1
                replay[item["account"]] += kopecks(item["amount"])
                if replay[item["account"]] != kopecks(item["balance_after"]):
                    problems.append(f"user {user_id}: statement item {item} breaks the replay")
            cursor = page["next_cursor"]
            if not cursor:
                break
        if (replay["available"], replay["reserved"]) != (available, reserved):
            problems.append(f"user {user_id}: the statement sums to {replay}")
        if seen != entries_per_user[user_id]:
            problems.append(
                f"user {user_id}: statement lists {seen} of {entries_per_user[user_id]}"
            )
    return problems


async def replayed(
    api: httpx.AsyncClient, operations: list[Operation], limit: int, refusals: bool = True
) -> list[str]:
    """A sample of the definite answers, each sent again under its key: the same status
    and body, a refusal's too (the first answer under a key is its answer)."""
    acknowledged = [op for op in operations if op.outcome == "ok"]
    refused = [op for op in operations if op.outcome == "refused" and op.own_answer]
    refused = refused if refusals else []
    sample = random.sample(acknowledged, min(limit, len(acknowledged)))
    sample += random.sample(refused, min(limit, len(refused)))
    problems = []
    for op in sample:
        again = await api.post(op.path, json=op.body, headers={"Idempotency-Key": op.key})
        if again.status_code != op.status or again.json() != op.response:
            problems.append(f"{op.key}: first {op.status} {op.response}, replay {again.text}")
        elif again.headers.get("idempotent-replayed") != "true":
            problems.append(f"{op.key}: replayed without Idempotent-Replayed: true")
    return problems
