"""The money routes answered before Litestar extracts their handlers' arguments
(controllers.before_request) answer exactly as Litestar's extraction did: the same status,
headers that matter and body, refusal by refusal, in the same order of checks."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.handlers import HTTPRouteHandler
from litestar.testing import TestClient

from entrypoints.container import Container, build_container
from entrypoints.http.app import create_litestar
from entrypoints.http.auth import Tokens
from entrypoints.http.controllers import ROUTES, Services
from entrypoints.settings import ApiToken, Settings

JSON = {"Content-Type": "application/json"}
DEPOSIT = {"user_id": 1, "amount": "10.00"}
# Each request is sent to both apps in turn, in this order, so each store sees the same.
REQUESTS: list[tuple[str, bytes, dict[str, str]]] = [
    ("/v1/deposits", json.dumps(DEPOSIT).encode(), JSON),
    ("/v1/deposits", json.dumps(DEPOSIT).encode(), {**JSON, "Idempotency-Key": "k-1"}),
    ("/v1/deposits", json.dumps(DEPOSIT).encode(), {**JSON, "Idempotency-Key": "k-1"}),  # replay
    ("/v1/withdrawals", json.dumps(DEPOSIT).encode(), {**JSON, "Idempotency-Key": "k-1"}),
    ("/v1/deposits", json.dumps(DEPOSIT).encode(), {**JSON, "Idempotency-Key": ""}),
    ("/v1/deposits", json.dumps(DEPOSIT).encode(), {**JSON, "Idempotency-Key": "x" * 256}),
    ("/v1/deposits", b"", JSON),
    ("/v1/deposits", b"", {}),
    ("/v1/deposits", b"{not json", JSON),
    ("/v1/deposits", b"NaN", JSON),
    ("/v1/deposits", b"null", JSON),
    ("/v1/deposits", b"[]", JSON),
    ("/v1/deposits", json.dumps(DEPOSIT).encode(), {"Content-Type": "text/plain"}),
    ("/v1/deposits", json.dumps(DEPOSIT).encode(), {}),
    (
        "/v1/deposits",
        json.dumps(DEPOSIT).encode(),
        {"Content-Type": "application/json; charset=latin-1"},
    ),
    ("/v1/deposits", b"{not json", {"Content-Type": "text/plain"}),
    ("/v1/deposits", b'{"user_id": 1, "amount": "1", "amount": "1000"}', JSON),
    ("/v1/deposits", b'{"user_id": 1, "amount": "1e2"}', JSON),
    ("/v1/deposits", b'{"user_id": 1, "amount": 0.001}', JSON),
    ("/v1/deposits", b'{"user_id": 1, "amount": "0"}', JSON),
    ("/v1/deposits", b'{"user_id": 1, "amount": "-5"}', JSON),
    ("/v1/deposits", b'{"user_id": 1, "amount": 1e30}', JSON),
    ("/v1/deposits", b'{"user_id": "abc", "amount": "1"}', JSON),
    ("/v1/deposits", b'{"amount": "1"}', JSON),
    ("/v1/deposits", b'{"user_id": 1, "amount": "1", "extra": 1}', JSON),
    ("/v1/deposits", b'{"user_id": 1, "amount": "1", "metadata": {"bad key": "v"}}', JSON),
    (
        "/v1/deposits",
        b'{"user_id": 1, "amount": "1", "description": "' + b"x" * 70_000 + b'"}',
        JSON,
    ),
    ("/v1/deposits", b"\xff\xfe", JSON),
    ("/v1/withdrawals", b'{"user_id": 1, "amount": "3"}', JSON),
    ("/v1/withdrawals", b'{"user_id": 1, "amount": "3000"}', JSON),
    ("/v1/withdrawals", b'{"user_id": 99, "amount": "3"}', JSON),
    ("/v1/transfers", b'{"from_user_id": 1, "to_user_id": 2, "amount": "1"}', JSON),
    ("/v1/transfers", b'{"from_user_id": 1, "to_user_id": 1, "amount": "1"}', JSON),
    ("/v1/reservations", b'{"user_id": 1, "service_id": 7, "order_id": 5, "amount": "1"}', JSON),
    ("/v1/reservations", b'{"user_id": 1, "service_id": 7, "order_id": 5, "amount": "1"}', JSON),
    ("/v1/reservations", b'{"user_id": 1, "service_id": 7, "order_id": 5, "amount": "2"}', JSON),
    ("/v1/reservations", b'{"user_id": 1, "service_id": 7, "order_id": 0, "amount": "1"}', JSON),
    (
        "/v1/movements",
        b'{"legs": [{"user_id": 1, "amount": "-1"}, {"user_id": 3, "amount": "1"}]}',
        JSON,
    ),
    (
        "/v1/movements",
        b'{"legs": [{"user_id": 1, "amount": "-1"}, {"user_id": 3, "amount": "2"}]}',
        JSON,
    ),
    ("/v1/movements", b'{"legs": [{"user_id": 1, "amount": "0.001"}]}', JSON),
    # The order in the path: checked after the body, as the signature model did.
    ("/v1/reservations/5/recognize", b'{"user_id": 1, "service_id": 7, "amount": "2"}', JSON),
    ("/v1/reservations/5/recognize", b'{"user_id": 1, "service_id": 7, "amount": "1"}', JSON),
    ("/v1/reservations/5/cancel", b'{"user_id": 1, "service_id": 7}', JSON),
    ("/v1/reservations/6/cancel", b'{"user_id": 1, "service_id": 7}', JSON),
    ("/v1/reservations/0/cancel", b'{"user_id": 1, "service_id": 7}', JSON),
    ("/v1/reservations/-1/recognize", b'{"user_id": 1, "service_id": 7, "amount": "1"}', JSON),
    ("/v1/reservations/9223372036854775808/cancel", b'{"user_id": 1, "service_id": 7}', JSON),
    ("/v1/reservations/9223372036854775807/cancel", b'{"user_id": 1, "service_id": 7}', JSON),
    ("/v1/reservations/abc/cancel", b'{"user_id": 1, "service_id": 7}', JSON),
    ("/v1/reservations/0/cancel", b"{bad", JSON),
    ("/v1/reservations/0/cancel", b"", {}),
    ("/v1/reservations/0/cancel", b'{"user_id": 1}', {**JSON, "Idempotency-Key": ""}),
    (
        "/v1/reservations/7/cancel",
        b'{"user_id": 1, "service_id": 7}',
        {**JSON, "Idempotency-Key": ""},
    ),
]
# What differs between two stores by the clock alone.
_CLOCK = re.compile(rb'"(created_at|closed_at)":"[^"]*"')


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[TestClient[Any], TestClient[Any]]]:
    apps = []
    for money_first in (True, False):
        container = build_container(Settings(store="memory", sweep_ms=0))
        apps.append(create_litestar(_services_of(container), money_first=money_first))
    with TestClient(apps[0]) as first, TestClient(apps[1]) as extracted:
        yield first, extracted


def _services_of(container: Container) -> Callable[[], Services]:
    def services() -> Services:
        return container.services()

    return services


def test_every_money_route_but_the_client_batch_is_answered_first() -> None:
    first = {
        path
        for handler in ROUTES
        if isinstance(handler, HTTPRouteHandler) and "money" in handler.opt
        for path in handler.paths
    }
    assert first == {
        "/v1/reservations/{order_id:int}/recognize",
        "/v1/reservations/{order_id:int}/cancel",
        "/v1/deposits",
        "/v1/withdrawals",
        "/v1/transfers",
        "/v1/reservations",
        "/v1/movements",
    }


def test_a_money_route_answered_first_answers_as_litestars_extraction_did(
    clients: tuple[TestClient[Any], TestClient[Any]],
) -> None:
    first, extracted = clients
    seen: set[int] = set()
    for path, body, headers in REQUESTS:
        answers = [c.post(path, content=body, headers=headers) for c in (first, extracted)]
        ours, theirs = answers
        said = f"{path} {body[:80]!r} {headers}"
        assert ours.status_code == theirs.status_code, f"{said}: {ours.text} / {theirs.text}"
        assert ours.headers.get("content-type") == theirs.headers.get("content-type"), said
        assert _CLOCK.sub(b"", ours.content) == _CLOCK.sub(b"", theirs.content), said
        seen.add(ours.status_code)
    # The requests above reach every kind of answer.
    assert seen >= {200, 201, 400, 404, 409, 413, 415, 422}, seen


def test_both_ways_record_the_named_tokens_caller_for_every_money_route() -> None:
    """The caller reaches the ledger whichever way a route is answered: each handler
    passes it on (`_apply`), as the hook does (`MoneyRoute.answer`)."""
    token = "token-of-billing-0123456789"
    tokens = Tokens.of([ApiToken(token, frozenset({"read", "write"}), "billing")])
    auth = {**JSON, "Authorization": f"Bearer {token}"}
    hold = {"user_id": 1, "service_id": 7, "amount": "1"}
    sent = [
        ("/v1/deposits", {"user_id": 1, "amount": "10"}),
        ("/v1/withdrawals", {"user_id": 1, "amount": "1"}),
        ("/v1/transfers", {"from_user_id": 1, "to_user_id": 2, "amount": "1"}),
        ("/v1/reservations", {**hold, "order_id": 5}),
        ("/v1/reservations/5/recognize", hold),
        ("/v1/reservations", {**hold, "order_id": 6}),
        ("/v1/reservations/6/cancel", {"user_id": 1, "service_id": 7}),
        (
            "/v1/movements",
            {"legs": [{"user_id": 2, "amount": "-1"}, {"user_id": 1, "amount": "1"}]},
        ),
    ]
    for money_first in (True, False):
        container = build_container(Settings(store="memory", sweep_ms=0))
        app = create_litestar(_services_of(container), tokens=tokens, money_first=money_first)
        with TestClient(app) as client:
            for path, body in sent:
                answer = client.post(path, json=body, headers=auth)
                assert answer.status_code in (200, 201), (path, answer.text)
            events = client.get("/v1/events?after=0", headers=auth).json()["items"]
        assert [e["type"] for e in events] == [
            "deposit", "withdrawal", "transfer_out", "transfer_in", "reserve", "recognize",
            "reserve", "cancel", "movement_out", "movement_in",
        ]  # fmt: skip
        assert {e["caller"] for e in events} == {"billing"}, money_first
