from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from adapters.memory.store import InMemoryStore
from entrypoints.container import build_app, build_container
from entrypoints.settings import Settings
from tests.http_api import Api
from tests.ledger_view import MemoryLedgerView


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[TestClient[Any], InMemoryStore]]:
    """One app a module (building one costs 0.3 s: its routes, DTOs and OpenAPI
    document), on a memory store that each test gets empty."""
    settings = Settings(store="memory")
    container = build_container(settings)
    with TestClient(build_app(settings, container)) as client:
        yield client, container.memory.store()


@pytest.fixture
def api(served: tuple[TestClient[Any], InMemoryStore]) -> Api:
    client, store = served
    store.clear()
    client.cookies.clear()
    return Api(client, MemoryLedgerView(store))
