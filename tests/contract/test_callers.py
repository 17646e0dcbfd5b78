"""Who moved the money, on both adapters: every ledger transaction and every event
names the caller whose token the request came with (BALANCE_API_TOKENS:
`token=scopes@name`), in the statement and in the events; the service's own doing (an
expiry) and an unnamed caller name none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.deposit import Deposit, deposit
from application.errors import IdempotencyKeyReused
from application.events import StoredEvent
from application.limits import SetLimits, set_limits
from application.reserve import Reserve, reserve
from application.statement import build_query, statement
from application.transfer import Transfer, transfer
from application.withdraw import Withdraw, withdraw
from application.work import Job, client_batch
from tests.conftest import Adapter
from tests.helpers import every_event, keep, outcomes_of, rub, run


def callers_of(events: list[StoredEvent]) -> list[tuple[str, int, str | None]]:
    return [(e.event.type, e.event.user_id, e.event.caller) for e in events]


async def test_each_transaction_and_event_names_its_caller(adapter: Adapter) -> None:
    await run(adapter, deposit, Deposit(1, rub("100")), key="d-1", caller="billing")
    await run(adapter, transfer, Transfer(1, 2, rub("10")), caller="payouts")
    await run(adapter, withdraw, Withdraw(2, rub("1")))  # an unnamed token, or no auth
    await run(adapter, set_limits, SetLimits(2, rub("5"), frozen=False), caller="risk")
    expires = datetime.now(UTC) + timedelta(hours=1)
    await run(adapter, reserve, Reserve(1, 5, 77, rub("30"), expires_at=expires), caller="shop")
    await adapter.make_due(77)
    assert await adapter.sweeper().sweep() == 1  # the service's own doing: no caller
    jobs = [
        Job.of(deposit, Deposit(3, rub("2")), keep),
        Job.of(deposit, Deposit(1, rub("1")), keep),
    ]
    batch = client_batch(jobs, outcomes_of, atomic=False, key=None, caller="bulk")
    await adapter.movements.submit(batch)

    assert callers_of(await every_event(adapter)) == [
        ("deposit", 1, "billing"),
        ("transfer_out", 1, "payouts"),
        ("transfer_in", 2, "payouts"),
        ("withdrawal", 2, None),
        ("limits_changed", 2, "risk"),
        ("reserve", 1, "shop"),
        ("expire", 1, None),
        ("deposit", 3, "bulk"),
        ("deposit", 1, "bulk"),
    ]
    first = await statement(build_query(1, descending=False), adapter.uow)
    assert [(line.kind.value, line.account.value, line.caller) for line in first.lines] == [
        ("deposit", "available", "billing"),
        ("transfer_out", "available", "payouts"),
        ("reserve", "available", "shop"),
        ("reserve", "reserved", "shop"),
        ("expire", "reserved", None),
        ("expire", "available", None),
        ("deposit", "available", "bulk"),
    ]
    second = await statement(build_query(2, descending=False), adapter.uow)
    assert [(line.kind.value, line.caller) for line in second.lines] == [
        ("transfer_in", "payouts"),
        ("withdrawal", None),
    ]


async def test_a_key_is_its_callers_another_callers_same_request_is_refused(
    adapter: Adapter,
) -> None:
    """Keys are one space for all callers (README, decision 7), and a named caller's
    request is its values and its name: another caller's same key and values are
    refused, not answered with the first one's replay (its money would not have moved).
    A caller's retry replays, whichever of its tokens sends it."""
    first = await run(adapter, deposit, Deposit(1, rub("100")), key="d-1", caller="billing")
    again = await run(adapter, deposit, Deposit(1, rub("100")), key="d-1", caller="billing")
    assert again == first
    for other in ("payouts", None):
        with pytest.raises(IdempotencyKeyReused):
            await run(adapter, deposit, Deposit(1, rub("100")), key="d-1", caller=other)
    jobs = [Job.of(deposit, Deposit(2, rub("1")), keep, "d-2", "billing")]
    batch = client_batch(jobs, outcomes_of, atomic=False, key="b-1", caller="billing")
    answered = (await adapter.movements.submit(batch)).response
    replayed = client_batch(jobs, outcomes_of, atomic=False, key="b-1", caller="billing")
    assert (await adapter.movements.submit(replayed)).response == answered
    for other in ("payouts", None):
        jobs = [Job.of(deposit, Deposit(2, rub("1")), keep, "d-2", other)]
        stolen = client_batch(jobs, outcomes_of, atomic=False, key="b-1", caller=other)
        with pytest.raises(IdempotencyKeyReused):
            await adapter.movements.submit(stolen)
        loose = client_batch(jobs, outcomes_of, atomic=False, key=None, caller=other)
        (outcome,) = (await adapter.movements.submit(loose)).outcomes
        assert isinstance(outcome.refusal, IdempotencyKeyReused)  # the operation's key
    assert callers_of(await every_event(adapter)) == [
        ("deposit", 1, "billing"),
        ("deposit", 2, "billing"),
    ]


async def test_a_key_stored_with_no_caller_named_replays_for_any_caller(
    adapter: Adapter,
) -> None:
    """Stored by an unnamed token, or before tokens had names: a retry that spans the
    naming of its token still replays, and moves nothing again."""
    first = await run(adapter, deposit, Deposit(1, rub("100")), key="d-1")
    for caller in ("billing", "payouts", None):
        again = await run(adapter, deposit, Deposit(1, rub("100")), key="d-1", caller=caller)
        assert again == first
    jobs = [Job.of(deposit, Deposit(2, rub("1")), keep, "d-2")]
    answered = (
        await adapter.movements.submit(client_batch(jobs, outcomes_of, atomic=True, key="b-1"))
    ).response
    for caller in ("billing", None):
        jobs = [Job.of(deposit, Deposit(2, rub("1")), keep, "d-2", caller)]
        batch = client_batch(jobs, outcomes_of, atomic=True, key="b-1", caller=caller)
        assert (await adapter.movements.submit(batch)).response == answered
    assert callers_of(await every_event(adapter)) == [("deposit", 1, None), ("deposit", 2, None)]
