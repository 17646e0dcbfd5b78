"""What every reader of the events may rely on, checked on events as JSON (the pull API's
items, the relay's messages): ids in order without gaps, each user's user_seq 1, 2,
3..., each balance the previous one plus the deltas, the last one the account's, and
one event per user each ledger transaction touched."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from decimal import Decimal
from typing import Any

import asyncpg
import httpx


def kopecks(amount: str) -> int:
    return int(Decimal(amount) * 100)


async def pulled(api: httpx.AsyncClient, page: int = 1000) -> list[dict[str, Any]]:
    """Every event through GET /v1/events, page after page."""
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        answer = await api.get("/v1/events", params={"after": after, "limit": page})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        found += body["items"]
        if not body["items"]:
            return found
        after = body["next_after"]


async def outbox(url: str) -> tuple[int, int]:
    db = await asyncpg.connect(url)
    try:
        row = await db.fetchrow("SELECT c.last_id, r.sent_upto FROM event_counter c, event_relay r")
    finally:
        await db.close()
    assert row is not None
    return row["last_id"], row["sent_upto"]


async def all_sent(url: str, seconds: float) -> tuple[int, int]:
    """(last event_id, sent_upto) once the relay confirmed everything, polled."""
    deadline = time.monotonic() + seconds
    state = await outbox(url)
    while state[1] < state[0]:
        assert time.monotonic() < deadline, f"still unsent after {seconds} s: {state}"
        await asyncio.sleep(0.2)
        state = await outbox(url)
    return state


def story_problems(
    events: list[dict[str, Any]],
    accounts: dict[int, tuple[int, int]],
    users_of_transaction: dict[int, set[int]] | None = None,
) -> list[str]:
    """`accounts`: each user's (available, reserved) in kopecks as the ledger has them;
    `users_of_transaction`: the users each ledger transaction's entries touch."""
    problems = []
    ids = [e["event_id"] for e in events]
    if ids != list(range(1, len(ids) + 1)):
        problems.append(f"event ids are not 1..{len(ids)} in order")
    last: dict[int, dict[str, Any]] = {}
    touched: dict[int, set[int]] = defaultdict(set)
    for e in events:
        user = e["user_id"]
        before = last.get(user)
        seq = before["user_seq"] + 1 if before else 1
        if e["user_seq"] != seq:
            problems.append(f"user {user}: user_seq {e['user_seq']} where {seq} was due")
        start = (
            (kopecks(before["balance"]["available"]), kopecks(before["balance"]["reserved"]))
            if before
            else (0, 0)
        )
        after = (kopecks(e["balance"]["available"]), kopecks(e["balance"]["reserved"]))
        moved = (
            start[0] + kopecks(e["available_delta"]),
            start[1] + kopecks(e["reserved_delta"]),
        )
        if after != moved:
            problems.append(f"event {e['event_id']}: balance {after}, previous + deltas {moved}")
        last[user] = e
        if e["transaction_id"] is not None:
            if user in touched[e["transaction_id"]]:
                problems.append(f"transaction {e['transaction_id']}: two events of user {user}")
            touched[e["transaction_id"]].add(user)
    for user, (available, reserved) in accounts.items():
        event = last.get(user)
        shown = (
            (kopecks(event["balance"]["available"]), kopecks(event["balance"]["reserved"]))
            if event
            else (0, 0)
        )
        if shown != (available, reserved):
            problems.append(f"user {user}: last event says {shown}, ledger {available, reserved}")
    if users_of_transaction is not None and dict(touched) != users_of_transaction:
        missing = set(users_of_transaction) ^ set(touched)
        problems.append(
            f"events and transactions disagree, e.g. transactions {sorted(missing)[:5]}"
        )
    return problems[:20]
