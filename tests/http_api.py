"""The HTTP app on the memory store, with a client that checks refusals write nothing."""

from __future__ import annotations

import json
from typing import Any

from litestar.testing import TestClient

from tests.ledger_view import MemoryLedgerView

PROBLEM = "application/problem+json"


class Api:
    def __init__(self, client: TestClient[Any], view: MemoryLedgerView) -> None:
        self.client = client
        self.view = view

    def post(self, path: str, body: Any, key: str | None = None, raw: bytes | None = None) -> Any:
        headers = {"Idempotency-Key": key} if key is not None else {}
        content = raw if raw is not None else json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
        return self.client.post(path, content=content, headers=headers)

    def snapshot(self) -> Any:
        return self.view.read()

    def refused(
        self, status: int, path: str, body: Any, field: str | None = None, **kw: Any
    ) -> Any:
        before = self.snapshot()
        response = self.post(path, body, **kw)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
        problem = response.json()
        assert problem["status"] == status
        assert {"type", "title", "detail"} <= problem.keys()
        if field is not None:
            assert field in [e["field"] for e in problem["errors"]], problem
        assert self.snapshot() == before, "a refusal wrote something"
        return problem
