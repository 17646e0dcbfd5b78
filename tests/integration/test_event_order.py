"""Event ids in commit order, on PostgreSQL: two workers commit batches at once while a
reader polls; since ids have no gaps, a reader that ever saw N+2 before N+1 would have
seen ids committed out of order."""

from __future__ import annotations

import asyncio
import contextlib
import random
from functools import partial

import pytest

from adapters.postgres.engine import create_engine
from adapters.postgres.movements import PostgresMovementBatch
from adapters.postgres.uow import PostgresUnitOfWork
from application.deposit import Deposit, deposit
from application.errors import StoreUnavailable
from application.events import events_after
from application.runner import MoneyMovements
from application.transfer import Transfer, transfer
from domain.errors import DomainError
from tests import postgres
from tests.helpers import keep, rub

pytestmark = pytest.mark.postgres


async def test_a_poller_sees_ids_one_by_one_while_two_workers_commit(pg_url: str) -> None:
    await postgres.truncate(pg_url)
    engines = [create_engine(pg_url, pool_size=8) for _ in range(3)]
    workers = [
        MoneyMovements(partial(PostgresMovementBatch, e), max_batch=16, max_in_flight=4)
        for e in engines[:2]
    ]
    done = asyncio.Event()
    seen: list[int] = []
    pages = 0

    async def client(n: int) -> None:
        rng = random.Random(n)
        for _ in range(60):
            worker = workers[rng.randrange(2)]
            one, other = rng.sample(range(1, 41), 2)
            for _ in range(5):  # a 503 says try again, as a client would
                try:
                    with contextlib.suppress(DomainError):
                        if rng.random() < 0.5:
                            await worker.execute(deposit, Deposit(one, rub("10")), keep)
                        else:
                            await worker.execute(transfer, Transfer(one, other, rub("3")), keep)
                    break
                except StoreUnavailable as error:
                    # Here: accounts created by another batch meanwhile, four attempts in
                    # a row, while 48 clients open 40 users' accounts at once.
                    if not error.outcome_known:
                        break

    async def poller() -> None:
        nonlocal pages
        after = 0
        while True:
            stop = done.is_set()
            found = await events_after(lambda: PostgresUnitOfWork(engines[2]), after, 1000)
            if found:
                pages += 1
                ids = [e.event_id for e in found]
                assert ids == list(range(after + 1, after + 1 + len(ids))), (after, ids[:5])
                seen.extend(ids)
                after = ids[-1]
            elif stop:
                return

    reading = asyncio.create_task(poller())
    try:
        # A task group: if one client fails, the others are stopped with it, not left
        # writing into the next test's database.
        async with asyncio.TaskGroup() as clients:
            for n in range(24):
                clients.create_task(client(n))
        done.set()
        await reading
    finally:
        reading.cancel()
        for engine in engines:
            await engine.dispose()
    assert len(seen) > 1000
    assert pages > 20, "the reader should have polled during the writes, not after"
