"""Runs a money use case as one unit: idempotency key, the use case, commit, retries."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from application.errors import ConcurrentUpdate, IdempotencyKeyReused, StoreUnavailable
from application.ports import MovementObserver, StoredResponse, UnitOfWork
from application.results import wrote
from domain.money import Money

C = TypeVar("C")
R = TypeVar("R")
UseCase = Callable[[C, UnitOfWork], Awaitable[R]]
Render = Callable[[R], StoredResponse]


def fingerprint(use_case: Callable[..., object], command: object) -> str:
    """Same use case and same command (dataclass repr is exact) -> same fingerprint."""
    return hashlib.sha256(f"{use_case.__name__}:{command!r}".encode()).hexdigest()


class _Unobserved:
    def applied(self, kind: str, amount_kopecks: int | None) -> None:
        pass

    def replayed(self, kind: str) -> None:
        pass


class MoneyMovements:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        attempts: int = 4,
        backoff: float = 0.005,
        observer: MovementObserver | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._attempts = attempts
        self._backoff = backoff
        self._observer = observer or _Unobserved()

    async def execute(
        self,
        use_case: UseCase[C, R],
        command: C,
        render: Render[R],
        idempotency_key: str | None = None,
    ) -> StoredResponse:
        """Apply the command once and answer with its rendered result.

        A passing store failure is retried while it is safe: always before
        commit, and after an unknown commit outcome only under an idempotency
        key, whose row commits together with the ledger entries.
        """
        for attempt in range(1, self._attempts + 1):
            try:
                return await self._once(use_case, command, render, idempotency_key)
            except ConcurrentUpdate:
                if attempt == self._attempts:
                    raise StoreUnavailable("too much contention, try again") from None
            except StoreUnavailable as failure:
                retry_safe = failure.outcome_known or idempotency_key is not None
                if attempt == self._attempts or not retry_safe:
                    raise
            await asyncio.sleep(self._backoff * attempt * random.random())
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self, use_case: UseCase[C, R], command: C, render: Render[R], key: str | None
    ) -> StoredResponse:
        async with self._uow_factory() as uow:
            if key is not None:
                request_print = fingerprint(use_case, command)
                claimed = await uow.idempotency.claim(key, request_print)
                if claimed is not None:
                    if claimed.fingerprint != request_print:
                        raise IdempotencyKeyReused
                    self._observer.replayed(use_case.__name__)
                    return claimed.response
            result = await use_case(command, uow)
            response = render(result)
            if key is not None:
                await uow.idempotency.complete(key, response)
            await uow.commit()
        if wrote(result):  # a reservation closed again or reserved again moved nothing
            amount = getattr(command, "amount", None)
            kopecks = amount.kopecks if isinstance(amount, Money) else None
            self._observer.applied(use_case.__name__, kopecks)
        return response
