from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from entrypoints.container import build_app, build_container
from entrypoints.settings import Settings
from tests.http_api import Api
from tests.ledger_view import MemoryLedgerView


@pytest.fixture
def api() -> Iterator[Api]:
    settings = Settings(store="memory")
    container = build_container(settings)
    view = MemoryLedgerView(container.memory.store())
    with TestClient(build_app(settings, container)) as client:
        yield Api(client, view)
