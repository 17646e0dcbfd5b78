"""The hot path serves the valid money requests itself, hands every other request to
Litestar with its body intact, and answers exactly as Litestar's handlers do."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from litestar.types import ASGIApp

from entrypoints.container import build_app, build_container
from entrypoints.http.app import MAX_BODY_BYTES, create_litestar, route_scopes
from entrypoints.http.auth import Tokens
from entrypoints.http.controllers import Services
from entrypoints.http.hot_path import hot_path
from entrypoints.http.money import MONEY_ROUTES
from entrypoints.settings import Settings

TOKEN = "hot-path-token-0123456789"
READ_ONLY = "hot-path-read-only-0123456789"
TOKENS = Tokens.of([(TOKEN, frozenset({"read", "write"})), (READ_ONLY, frozenset({"read"}))])


@dataclass
class Inner:
    """Stands for Litestar: records what it was handed, answers 418."""

    requests: list[tuple[str, str, bytes]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.requests.append((scope["method"], scope["path"], body))
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


async def call(
    app: Any, path: str, body: bytes, headers: dict[str, str], method: str = "POST"
) -> Reply:
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw = [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]
    scope = {"type": "http", "method": method, "path": path, "headers": raw}
    await app(scope, receive, send)
    start, *rest = sent
    return Reply(start["status"], dict(start["headers"]), b"".join(m["body"] for m in rest))


@pytest.fixture
def served() -> tuple[Any, Inner]:
    container = build_container(Settings(store="memory"))
    inner = Inner()
    return hot_path(inner, container.services, TOKENS, MAX_BODY_BYTES, route_scopes()), inner


JSON = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
DEPOSIT = b'{"user_id": 1, "amount": "100.00"}'


async def test_valid_money_requests_are_served_without_litestar(served: tuple[Any, Inner]) -> None:
    app, inner = served
    for path, body, status in (
        ("/v1/deposits", DEPOSIT, 201),
        ("/v1/withdrawals", b'{"user_id": 1, "amount": 1}', 201),
        ("/v1/transfers", b'{"from_user_id": 1, "to_user_id": 2, "amount": "1.5"}', 201),
        ("/v1/reservations", b'{"user_id":1,"service_id":3,"order_id":7,"amount":"2"}', 201),
        ("/v1/reservations", b'{"user_id":1,"service_id":3,"order_id":8,"amount":"2"}', 201),
        ("/v1/reservations/7/recognize", b'{"user_id":1,"service_id":3,"amount":"1"}', 200),
        ("/v1/reservations/8/cancel", b'{"user_id": 1, "service_id": 3}', 200),
    ):
        reply = await call(app, path, body, {**JSON, "Idempotency-Key": f"k-{path}-{body!r}"})
        assert reply.status == status, reply.body
        assert reply.headers[b"content-type"] == b"application/json"
        assert int(reply.headers[b"content-length"]) == len(reply.body)
    assert inner.requests == []
    balance = json.loads(reply.body)["balance"]
    assert balance == {"user_id": 1, "available": "96.50", "reserved": "0.00"}


async def test_refusals_of_the_rules_are_answered_as_problems(served: tuple[Any, Inner]) -> None:
    app, inner = served
    reply = await call(app, "/v1/withdrawals", b'{"user_id": 9, "amount": "1"}', JSON)
    assert (reply.status, reply.headers[b"content-type"]) == (404, b"application/problem+json")
    assert json.loads(reply.body)["type"] == "/problems/user-not-found"
    reply = await call(app, "/v1/deposits", b'{"user_id": 1, "amount": "0"}', JSON)
    assert reply.status == 422
    assert json.loads(reply.body)["errors"][0]["field"] == "amount"
    assert inner.requests == []


HANDED_ON: list[tuple[str, str, bytes, dict[str, str]]] = [
    ("not a money route", "/v1/services", b"{}", JSON),
    ("trailing slash", "/v1/deposits/", DEPOSIT, JSON),
    ("order id zero", "/v1/reservations/0/cancel", b'{"user_id":1,"service_id":3}', JSON),
    ("order id above 2**63-1", f"/v1/reservations/{2**63}/cancel", b"{}", JSON),
    ("order id with a sign", "/v1/reservations/+7/cancel", b"{}", JSON),
    ("no token", "/v1/deposits", DEPOSIT, {"Content-Type": "application/json"}),
    ("a token without write", "/v1/deposits", DEPOSIT, {**JSON, "Authorization": READ_ONLY}),
    ("an unknown token", "/v1/deposits", DEPOSIT, {**JSON, "Authorization": "Bearer nope"}),
    ("text/plain", "/v1/deposits", DEPOSIT, {**JSON, "Content-Type": "text/plain"}),
    ("latin-1", "/v1/deposits", DEPOSIT, {**JSON, "Content-Type": "application/json; charset=x"}),
    ("malformed JSON", "/v1/deposits", b'{"user_id": 1,', JSON),
    ("not UTF-8", "/v1/deposits", b'{"user_id": 1, "amount": "\xff"}', JSON),
    ("a field missing", "/v1/deposits", b'{"user_id": 1}', JSON),
    ("an unknown field", "/v1/deposits", b'{"user_id":1,"amount":"1","x":1}', JSON),
    ("a key twice", "/v1/deposits", b'{"user_id":1,"amount":"1","amount":"9"}', JSON),
    ("a lax amount", "/v1/deposits", b'{"user_id": 1, "amount": "+1"}', JSON),
    ("a float id", "/v1/deposits", b'{"user_id": 1.0, "amount": "1"}', JSON),
    ("a bad key", "/v1/deposits", DEPOSIT, {**JSON, "Idempotency-Key": "caf\xe9"}),
    ("an empty key", "/v1/deposits", DEPOSIT, {**JSON, "Idempotency-Key": ""}),
    ("a bad length", "/v1/deposits", DEPOSIT, {**JSON, "Content-Length": "1e3"}),
    ("a length too big", "/v1/deposits", DEPOSIT, {**JSON, "Content-Length": "99999"}),
    ("an odd host", "/v1/deposits", DEPOSIT, {**JSON, "Host": "a b"}),
    ("a body too big", "/v1/deposits", b'{"description": "' + b"x" * MAX_BODY_BYTES + b'"}', JSON),
]


@pytest.mark.parametrize(
    ("path", "body", "headers"), [case[1:] for case in HANDED_ON], ids=[c[0] for c in HANDED_ON]
)
async def test_what_it_would_refuse_goes_to_litestar_body_intact(
    served: tuple[Any, Inner], path: str, body: bytes, headers: dict[str, str]
) -> None:
    app, inner = served
    reply = await call(app, path, body, headers)
    assert reply.status == 418
    assert inner.requests == [("POST", path, body)]


async def test_other_methods_and_a_repeated_header_go_to_litestar(
    served: tuple[Any, Inner],
) -> None:
    app, inner = served
    assert (await call(app, "/v1/deposits", b"", {}, method="GET")).status == 418
    twice = [(b"content-type", b"application/json")] * 2 + [
        (b"authorization", b"Bearer " + TOKEN.encode())
    ]
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": DEPOSIT, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/deposits", "headers": twice}
    await app(scope, receive, send)
    assert sent[0]["status"] == 418
    assert inner.requests == [("GET", "/v1/deposits", b""), ("POST", "/v1/deposits", DEPOSIT)]


# A session of money requests, valid and refused, replayed and reused keys included.
SESSION: list[tuple[str, str, str | None]] = [
    ("/v1/deposits", '{"user_id": 1, "amount": "100.00", "description": "card"}', "a"),
    ("/v1/deposits", '{"user_id": 1, "amount": "100.00", "description": "card"}', "a"),
    ("/v1/deposits", '{"user_id": 1, "amount": "5"}', "a"),
    ("/v1/deposits", '{"user_id": 1, "amount": 0.5}', None),
    ("/v1/deposits", '{"user_id": 1, "amount": "0.00"}', None),
    ("/v1/deposits", '{"user_id": 1, "amount": "10000000000000.01"}', None),
    ("/v1/withdrawals", '{"user_id": 1, "amount": "1000"}', None),
    ("/v1/withdrawals", '{"user_id": 2, "amount": "1"}', None),
    ("/v1/withdrawals", '{"user_id": 1, "amount": "0.25"}', "b"),
    ("/v1/transfers", '{"from_user_id": 1, "to_user_id": 1, "amount": "1"}', None),
    ("/v1/transfers", '{"from_user_id": 1, "to_user_id": 2, "amount": "3"}', "c"),
    ("/v1/transfers", '{"from_user_id": 3, "to_user_id": 2, "amount": "3"}', None),
    ("/v1/reservations", '{"user_id": 1, "service_id": 4, "order_id": 10, "amount": "7"}', "d"),
    ("/v1/reservations", '{"user_id": 1, "service_id": 4, "order_id": 10, "amount": "7"}', None),
    ("/v1/reservations", '{"user_id": 1, "service_id": 4, "order_id": 10, "amount": "8"}', None),
    ("/v1/reservations", '{"user_id": 1, "service_id": 4, "order_id": 11, "amount": "1e3"}', None),
    ("/v1/reservations/10/recognize", '{"user_id": 1, "service_id": 5, "amount": "7"}', None),
    ("/v1/reservations/10/recognize", '{"user_id": 1, "service_id": 4, "amount": "70"}', None),
    ("/v1/reservations/10/recognize", '{"user_id": 1, "service_id": 4, "amount": "6"}', "e"),
    ("/v1/reservations/10/recognize", '{"user_id": 1, "service_id": 4, "amount": "6"}', None),
    ("/v1/reservations/10/cancel", '{"user_id": 1, "service_id": 4}', None),
    ("/v1/reservations/12/cancel", '{"user_id": 1, "service_id": 4}', None),
    ("/v1/deposits", '{"user_id": 1, "amount": "1"}', "x" * 256),
]
_OWN = {"x-request-id", "date"}  # the observing layer's and the server's


def _headers(headers: Any) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in headers.items() if k not in _OWN)


_TIMES = re.compile(rb'"(created_at|closed_at)":"[^"]*"')


def clients() -> Iterator[tuple[TestClient[ASGIApp], TestClient[Litestar]]]:
    settings = Settings(store="memory", api_tokens=((TOKEN, frozenset({"read", "write"})),))
    container = build_container(settings)

    def services() -> Services:
        return container.services()

    litestar = create_litestar(services, tokens=TOKENS)
    with TestClient(build_app(settings)) as hot, TestClient(litestar) as plain:
        yield hot, plain


async def test_its_answers_are_litestars_byte_for_byte() -> None:
    for hot, plain in clients():
        for path, body, key in SESSION:
            headers = {**JSON, **({"Idempotency-Key": key} if key is not None else {})}
            answers = [c.post(path, content=body, headers=headers) for c in (hot, plain)]
            first, second = answers
            assert first.status_code == second.status_code, (path, body, first.text)
            assert _headers(first.headers) == _headers(second.headers), path
            assert _TIMES.sub(b"", first.content) == _TIMES.sub(b"", second.content), path


def test_logs_and_metrics_label_its_routes_as_litestar_does() -> None:
    for hot, _ in clients():
        cancel = "/v1/reservations/5/cancel"
        body = '{"user_id": 1, "service_id": 1}'
        hot.post("/v1/deposits", content='{"user_id": 1, "amount": "5"}', headers=JSON)
        reserve = '{"user_id": 1, "service_id": 1, "order_id": 5, "amount": "1"}'
        hot.post("/v1/reservations", content=reserve, headers=JSON)
        assert hot.post(cancel, content=body, headers=JSON).status_code == 200  # hot path
        assert hot.post(cancel, content=body[:-1], headers=JSON).status_code == 400  # Litestar
        metrics = hot.get("/metrics").text
        for status in ("200", "400"):
            label = f'route="/v1/reservations/{{order_id}}/cancel",status="{status}"'
            assert label in metrics, metrics


def test_it_asks_the_scope_each_route_declares_to_litestar() -> None:
    container = build_container(Settings(store="memory"))
    scopes = route_scopes()
    assert {scopes[route.path] for route in MONEY_ROUTES} == {"write"}
    del scopes["/v1/deposits"]
    with pytest.raises(RuntimeError, match="declares no scope"):
        hot_path(Inner(), container.services, TOKENS, MAX_BODY_BYTES, scopes)


async def test_a_route_that_declared_another_scope_would_need_it() -> None:
    container = build_container(Settings(store="memory"))
    scopes = {**route_scopes(), "/v1/deposits": "report"}
    inner = Inner()
    app = hot_path(inner, container.services, TOKENS, MAX_BODY_BYTES, scopes)
    assert (await call(app, "/v1/deposits", DEPOSIT, JSON)).status == 418  # TOKEN lacks report
    assert inner.requests == [("POST", "/v1/deposits", DEPOSIT)]
