from __future__ import annotations

import pickle
from typing import Any

from application.ports import StoredResponse
from application.runner import UseCase
from domain.money import Money
from tests.conftest import Adapter


def rub(value: str) -> Money:
    return Money.amount(value)


def keep(result: object) -> StoredResponse:
    """Render a result so a replay can hand back the very same object."""
    return StoredResponse(200, pickle.dumps(result))


async def run(
    adapter: Adapter, use_case: UseCase[Any, Any], command: Any, key: str | None = None
) -> Any:
    stored = await adapter.movements.execute(use_case, command, keep, key)
    return pickle.loads(stored.body)
