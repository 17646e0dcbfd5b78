"""What an operator relies on: bearer tokens with scopes on every /v1 route, metrics
that move with requests, a request id on every answer and log line, no secrets in
logs."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from litestar.testing import TestClient
from litestar.types import ASGIApp

from adapters.memory.store import InMemoryMovementBatch
from application.errors import StoreUnavailable
from entrypoints.container import build_app, build_container
from entrypoints.http import observe
from entrypoints.http.app import create_app, create_litestar
from entrypoints.http.auth import scope_of
from entrypoints.http.observe import JsonFormatter
from entrypoints.settings import SCOPES, Settings

ALL = "token-all-scopes-0123456789"
ONLY = {scope: f"token-only-{scope}-0123456789" for scope in SCOPES}
NAMED = "token-of-billing-0123456789"
ROTATED = "token-of-billing-new-0123456789"
PAYOUTS = "token-of-payouts-0123456789"
TOKENS = ",".join(
    [
        f"{ALL}=read+write+report+admin",
        f"{NAMED}=read+write+admin@billing",
        f"{ROTATED}=read+write@billing",
        f"{PAYOUTS}=read+write@payouts",
        *(f"{t}={s}" for s, t in ONLY.items()),
    ]
)

# One request that succeeds for every /v1 route, on the store `seeded` prepares.
SAMPLES: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("POST", "/v1/deposits"): ("/v1/deposits", {"user_id": 1, "amount": "5"}),
    ("POST", "/v1/withdrawals"): ("/v1/withdrawals", {"user_id": 1, "amount": "1"}),
    ("POST", "/v1/transfers"): (
        "/v1/transfers",
        {"from_user_id": 1, "to_user_id": 2, "amount": "1"},
    ),
    ("POST", "/v1/reservations"): (
        "/v1/reservations",
        {"user_id": 1, "service_id": 3, "order_id": 90, "amount": "1"},
    ),
    ("POST", "/v1/reservations/{order_id:int}/recognize"): (
        "/v1/reservations/5/recognize",
        {"user_id": 1, "service_id": 3, "amount": "2"},
    ),
    ("POST", "/v1/reservations/{order_id:int}/cancel"): (
        "/v1/reservations/6/cancel",
        {"user_id": 1, "service_id": 3},
    ),
    ("GET", "/v1/reservations/{order_id:int}"): ("/v1/reservations/5", None),
    ("POST", "/v1/movements"): (
        "/v1/movements",
        {"legs": [{"user_id": 1, "amount": "-1"}, {"user_id": 2, "amount": "1"}]},
    ),
    ("PUT", "/v1/users/{user_id:int}/limits"): (
        "/v1/users/1/limits",
        {"credit_limit": "10", "frozen": False},
    ),
    ("GET", "/v1/users/{user_id:int}/limits"): ("/v1/users/1/limits", None),
    ("POST", "/v1/batches"): (
        "/v1/batches",
        {"operations": [{"op": "deposit", "user_id": 1, "amount": "1"}]},
    ),
    ("GET", "/v1/users/{user_id:int}/balance"): ("/v1/users/1/balance", None),
    ("GET", "/v1/users/{user_id:int}/transactions"): ("/v1/users/1/transactions", None),
    ("PUT", "/v1/services/{service_id:int}"): ("/v1/services/3", {"name": "Delivery"}),
    ("GET", "/v1/services"): ("/v1/services", None),
    ("GET", "/v1/events"): ("/v1/events?after=0&limit=10", None),
    ("POST", "/v1/reports/revenue"): ("/v1/reports/revenue", {"year": 2022, "month": 11}),
    ("GET", "/v1/reports/revenue/{period:str}"): ("/v1/reports/revenue/2022-11.csv", None),
    ("GET", "/v1/reports/revenue.csv"): (
        "/v1/reports/revenue.csv?from=2022-11-01&to=2022-12-01",
        None,
    ),
}


def v1_routes() -> dict[tuple[str, str], str | None]:
    """(method, path) -> the scope it declares, for every /v1 route the app serves."""
    found: dict[tuple[str, str], str | None] = {}
    for route in create_litestar(lambda: None).routes:  # type: ignore[arg-type,return-value]
        if route.path.startswith("/v1"):
            for handler in getattr(route, "route_handlers", ()):
                for method in getattr(handler, "http_methods", ()):
                    if method != "OPTIONS":  # Litestar's own, answers the allowed methods
                        found[(method, route.path)] = scope_of(handler)
    return found


def with_tokens(**env: str) -> Iterator[TestClient[ASGIApp]]:
    settings = Settings.from_env({"BALANCE_STORE": "memory", **env})
    with TestClient(build_app(settings, build_container(settings))) as client:
        yield client


@pytest.fixture
def guarded() -> Iterator[TestClient[ASGIApp]]:
    yield from with_tokens(BALANCE_API_TOKENS=TOKENS)


def seed(client: TestClient[ASGIApp]) -> None:
    auth = {"Authorization": f"Bearer {ALL}"}
    for path, body in (
        ("/v1/deposits", {"user_id": 1, "amount": "100"}),
        ("/v1/reservations", {"user_id": 1, "service_id": 3, "order_id": 5, "amount": "10"}),
        ("/v1/reservations", {"user_id": 1, "service_id": 3, "order_id": 6, "amount": "10"}),
    ):
        assert client.post(path, json=body, headers=auth).status_code == 201


def send(
    client: TestClient[ASGIApp], method: str, route: tuple[str, str], token: str | None
) -> Any:
    path, body = SAMPLES[route]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method, path, json=body, headers=headers)


def test_every_v1_route_declares_a_scope_and_has_a_sample(guarded: TestClient[ASGIApp]) -> None:
    routes = v1_routes()
    assert set(routes) == set(SAMPLES), "a new /v1 route needs a sample here"
    assert all(scope in SCOPES for scope in routes.values()), routes


@pytest.mark.parametrize("route", sorted(SAMPLES))
def test_401_without_a_token_403_with_another_scope_2xx_with_the_right_one(
    guarded: TestClient[ASGIApp], route: tuple[str, str]
) -> None:
    method = route[0]
    needed = v1_routes()[route]
    seed(guarded)
    for token in (None, "not-a-token-of-ours-0123456789"):
        missing = send(guarded, method, route, token)
        assert missing.status_code == 401, missing.text
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert [e["field"] for e in missing.json()["errors"]] == ["Authorization"]
    for scope, token in ONLY.items():
        answer = send(guarded, method, route, token)
        if scope == needed:
            assert 200 <= answer.status_code < 300, answer.text
        else:
            assert answer.status_code == 403, answer.text
            assert needed in answer.json()["detail"]
            assert [e["field"] for e in answer.json()["errors"]] == ["Authorization"]


def test_a_refused_token_writes_nothing(guarded: TestClient[ASGIApp]) -> None:
    seed(guarded)
    before = guarded.get("/v1/users/1/balance", headers={"Authorization": f"Bearer {ALL}"}).json()
    for token in (None, ONLY["read"], ONLY["report"]):
        send(guarded, "POST", ("POST", "/v1/deposits"), token)
    after = guarded.get("/v1/users/1/balance", headers={"Authorization": f"Bearer {ALL}"}).json()
    assert after == before


def test_health_metrics_and_docs_need_no_token(guarded: TestClient[ASGIApp]) -> None:
    for path in ("/health/live", "/health/ready", "/metrics", "/schema/openapi.json"):
        assert guarded.get(path).status_code == 200, path


@pytest.mark.parametrize(
    ("path", "token"),
    [
        ("/health/live", None),
        ("/schema/openapi.json", None),
        ("/v1/users/1/balance", ALL),
        ("/v1/users/1/balance", None),  # 401
        ("/v1/users/99/balance", ALL),  # 404
        ("/v1/reports/revenue/2022-11.csv", ALL),
    ],
)
def test_head_is_get_without_the_content(
    guarded: TestClient[ASGIApp], path: str, token: str | None
) -> None:
    seed(guarded)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    got = guarded.get(path, headers=headers)
    head = guarded.head(path, headers=headers)
    assert head.status_code == got.status_code
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers.get("content-length") == got.headers.get("content-length")


def test_a_get_route_says_it_takes_head(guarded: TestClient[ASGIApp]) -> None:
    for method in ("OPTIONS", "DELETE"):  # 204 and 405, each with the route's Allow
        answer = guarded.request(method, "/health/live")
        assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_head_of_a_route_with_no_get_is_405(guarded: TestClient[ASGIApp]) -> None:
    before = guarded.get("/metrics").text
    head = guarded.head("/v1/deposits", headers={"Authorization": f"Bearer {ALL}"})
    assert (head.status_code, head.content) == (405, b"")
    assert set(head.headers["allow"].split(", ")) == {"OPTIONS", "POST"}
    after = guarded.get("/metrics").text
    labels = {"method": "HEAD", "route": "unmatched", "status": "405"}
    assert requests_between(before, after, **labels) == 1


def test_the_schema_declares_bearer_auth_on_v1(guarded: TestClient[ASGIApp]) -> None:
    document = guarded.get("/schema/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["BearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["BearerToken"]["description"],
    }
    deposit = document["paths"]["/v1/deposits"]["post"]
    assert deposit["security"] == [{"BearerToken": []}]
    assert {"401", "403"} <= deposit["responses"].keys()
    assert "security" not in document["paths"]["/health/live"]["get"]


def test_without_tokens_the_service_warns_that_it_is_open(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "balance"):
        client = next(with_tokens())
        assert client.post("/v1/deposits", json={"user_id": 1, "amount": "1"}).status_code == 201
    assert "BALANCE_API_TOKENS is not set" in caplog.text


def counter(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def test_a_method_of_no_standard_is_one_series_not_one_each(
    guarded: TestClient[ASGIApp],
) -> None:
    """A scanner's made-up methods would each add a series to every worker's files and to
    Prometheus, for good: they are all counted as `other`."""
    before = guarded.get("/metrics").text
    for method in ("FOOBAR1", "FOOBAR2", "X" * 300, "PROPFIND"):
        assert guarded.request(method, "/health/live").status_code == 405
    after = guarded.get("/metrics").text
    labels = {"method": "other", "route": "unmatched", "status": "405"}
    assert requests_between(before, after, **labels) == 4
    for sent in ("FOOBAR", "PROPFIND", "XXX"):
        assert sent not in after


def requests_between(before: str, after: str, **labels: str) -> float:
    """The requests counted with `labels` from one /metrics text to a later one."""
    name = "balance_http_requests_total"
    return counter(after, name, **labels) - counter(before, name, **labels)


def test_metrics_move_with_requests(guarded: TestClient[ASGIApp]) -> None:
    auth = {"Authorization": f"Bearer {ALL}", "Idempotency-Key": "metrics-1"}
    before = guarded.get("/metrics").text
    body = {"user_id": 7, "amount": "12.50"}
    assert guarded.post("/v1/deposits", json=body, headers=auth).status_code == 201
    assert guarded.post("/v1/deposits", json=body, headers=auth).status_code == 201  # replay
    assert guarded.post("/v1/withdrawals", json=body, headers=auth).status_code == 422  # key reuse
    assert guarded.get("/v1/users/7/balance").status_code == 401
    after = guarded.get("/metrics").text

    def moved(name: str, **labels: str) -> float:
        return counter(after, name, **labels) - counter(before, name, **labels)

    route = {"method": "POST", "route": "/v1/deposits"}
    assert moved("balance_http_requests_total", **route, status="201") == 2
    assert moved("balance_http_request_duration_seconds_count", **route) == 2
    assert moved("balance_money_movements_total", kind="deposit", caller="") == 1
    assert moved("balance_money_moved_rubles_total", kind="deposit", caller="") == 12.5
    assert moved("balance_idempotent_replays_total", kind="deposit") == 1
    assert moved("balance_refusals_total", reason="idempotency-key-reused") == 1
    assert moved("balance_refusals_total", reason="unauthorized") == 1
    assert "balance_db_pool_connections_in_use" in after
    # Three batches: the deposit, its replay, the reused key (each came alone).
    assert moved("balance_db_transactions_total") == 3
    assert moved("balance_batch_size_count") == 3
    assert moved("balance_batch_size_sum") == 3


def test_the_request_id_is_returned_and_logged_and_secrets_are_not(
    guarded: TestClient[ASGIApp], caplog: pytest.LogCaptureFixture
) -> None:
    auth = {"Authorization": f"Bearer {ALL}"}
    with caplog.at_level(logging.INFO, "balance.access"):
        given = guarded.get("/v1/services", headers={**auth, "X-Request-ID": "req-42.a:b"})
        made = guarded.get("/v1/services", headers=auth)
        hostile = guarded.get("/v1/services", headers={**auth, "X-Request-ID": "bad id;drop"})
    assert given.headers["x-request-id"] == "req-42.a:b"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["x-request-id"])
    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(r)) for r in caplog.records]
    first = lines[0]
    assert {"method", "route", "status", "duration_ms", "message", "level", "ts"} <= first.keys()
    assert (first["route"], first["status"], first["request_id"]) == (
        "/v1/services",
        200,
        "req-42.a:b",
    )
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    assert ALL not in logged


def test_access_lines_written_straight_are_the_lines_the_json_formatter_writes(
    guarded: TestClient[ASGIApp],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Workers write access lines without the logging module (configure_logging with
    JSON): the same fields, in the same order, with the same values."""
    auth = {"Authorization": f"Bearer {ALL}", "X-Request-ID": "req-7"}
    named = {**auth, "Authorization": f"Bearer {NAMED}"}
    with caplog.at_level(logging.INFO, "balance.access"):
        guarded.get("/v1/services", headers=auth)
        guarded.get("/v1/nowhere/\u00e9\u2028", headers=auth)
        guarded.get("/v1/services", headers=named)
    formatter = JsonFormatter()
    logged = [json.loads(formatter.format(r)) for r in caplog.records]
    with (tmp_path / "log").open("wb") as log:
        monkeypatch.setattr(observe, "_lines", observe.AccessLines(log.fileno()))
        caplog.clear()
        with caplog.at_level(logging.INFO, "balance.access"):
            guarded.get("/v1/services", headers=auth)
            guarded.get("/v1/nowhere/\u00e9\u2028", headers=auth)
            guarded.get("/v1/services", headers=named)
        observe.flush_access_lines()
    assert caplog.records == []  # not through logging
    written = [json.loads(line) for line in (tmp_path / "log").read_bytes().split(b"\n")[:-1]]
    assert len(written) == len(logged) == 3
    assert [line.get("caller") for line in written] == [None, None, "billing"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", written[0]["ts"])
    for straight, formatted in zip(written, logged, strict=True):
        assert list(straight) == list(formatted)
        for field in ("ts", "duration_ms"):
            straight.pop(field), formatted.pop(field)
        assert straight == formatted
    assert written[1]["path"] == "/v1/nowhere/\u00e9\u2028"


def test_a_named_tokens_caller_is_in_the_statement_the_events_and_the_access_log(
    guarded: TestClient[ASGIApp], caplog: pytest.LogCaptureFixture
) -> None:
    """`token=scopes@billing`: what its requests do names `billing`, on every way money
    moves (a route answered before Litestar's extraction, a batch, the limits); an
    unnamed token's names no one. A refusal moves nothing, and its access line still
    names the caller that tried."""
    named, unnamed = {"Authorization": f"Bearer {NAMED}"}, {"Authorization": f"Bearer {ALL}"}
    before = guarded.get("/metrics").text
    with caplog.at_level(logging.INFO, "balance.access"):
        for body, auth in (
            ({"user_id": 4, "amount": "10"}, named),
            ({"user_id": 4, "amount": "1"}, unnamed),
        ):
            assert guarded.post("/v1/deposits", json=body, headers=auth).status_code == 201
        batch = {"operations": [{"op": "withdrawal", "user_id": 4, "amount": "2"}]}
        assert guarded.post("/v1/batches", json=batch, headers=named).status_code == 200
        limits = {"credit_limit": "0", "frozen": True}
        assert guarded.put("/v1/users/4/limits", json=limits, headers=named).status_code == 200
        report = {"year": 2022, "month": 11}
        assert guarded.post("/v1/reports/revenue", json=report, headers=named).status_code == 403
    statement = guarded.get("/v1/users/4/transactions?order=asc", headers=unnamed).json()
    assert [(item["kind"], item["caller"]) for item in statement["items"]] == [
        ("deposit", "billing"),
        ("deposit", None),
        ("withdrawal", "billing"),
    ]
    events = guarded.get("/v1/events?after=0&user_id=4", headers=unnamed).json()["items"]
    assert [(e["type"], e["caller"]) for e in events] == [
        ("deposit", "billing"),
        ("deposit", None),
        ("withdrawal", "billing"),
        ("limits_changed", "billing"),
    ]
    after = guarded.get("/metrics").text
    for name, labels, difference in (
        ("balance_money_movements_total", {"kind": "deposit", "caller": "billing"}, 1),
        ("balance_money_movements_total", {"kind": "deposit", "caller": ""}, 1),
        ("balance_money_moved_rubles_total", {"kind": "deposit", "caller": "billing"}, 10),
        ("balance_money_movements_total", {"kind": "withdraw", "caller": "billing"}, 1),
    ):
        assert counter(after, name, **labels) - counter(before, name, **labels) == difference
    lines = [(r.method, r.status, getattr(r, "caller", None)) for r in caplog.records]  # type: ignore[attr-defined]
    assert lines == [
        ("POST", 201, "billing"),
        ("POST", 201, None),
        ("POST", 200, "billing"),
        ("PUT", 200, "billing"),
        ("POST", 403, "billing"),
    ]


def test_a_key_replays_for_its_caller_and_is_refused_to_another(
    guarded: TestClient[ASGIApp],
) -> None:
    """Billing's retry replays through either of its tokens (a rotation); the same key
    and values from payouts, or from an unnamed token, are 422, and move nothing."""
    body = {"user_id": 12, "amount": "10"}

    def post(token: str) -> Any:
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "pay-12"}
        return guarded.post("/v1/deposits", json=body, headers=headers)

    first = post(NAMED)
    assert first.status_code == 201
    again = post(ROTATED)
    assert (again.status_code, again.content) == (201, first.content)
    for other in (PAYOUTS, ALL):
        refused = post(other)
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"] == "/problems/idempotency-key-reused"
        assert refused.json()["errors"][0]["field"] == "Idempotency-Key"
    auth = {"Authorization": f"Bearer {ALL}"}
    items = guarded.get("/v1/users/12/transactions", headers=auth).json()["items"]
    assert [(item["amount"], item["caller"]) for item in items] == [("10.00", "billing")]


def test_a_repeated_reservation_or_cancellation_is_not_counted_as_a_movement(
    guarded: TestClient[ASGIApp],
) -> None:
    auth = {"Authorization": f"Bearer {ALL}"}
    deposit = {"user_id": 8, "amount": "10"}
    assert guarded.post("/v1/deposits", json=deposit, headers=auth).status_code == 201
    before = guarded.get("/metrics").text
    order = {"user_id": 8, "service_id": 2, "order_id": 77, "amount": "3"}
    closing = {"user_id": 8, "service_id": 2}
    for path, body, statuses in (
        ("/v1/reservations", order, (201, 200)),
        ("/v1/reservations/77/cancel", closing, (200, 200)),
    ):
        for status in statuses:
            assert guarded.post(path, json=body, headers=auth).status_code == status
    after = guarded.get("/metrics").text
    for kind in ("reserve", "cancel"):
        counted = counter(after, "balance_money_movements_total", kind=kind, caller="")
        assert counted - counter(before, "balance_money_movements_total", kind=kind, caller="") == 1
    moved = counter(after, "balance_money_moved_rubles_total", kind="reserve", caller="")
    assert (
        moved - counter(before, "balance_money_moved_rubles_total", kind="reserve", caller="") == 3
    )


def test_batch_operations_count_like_single_movements(guarded: TestClient[ASGIApp]) -> None:
    auth = {"Authorization": f"Bearer {ALL}"}
    before = guarded.get("/metrics").text
    lines = [
        {"op": "deposit", "user_id": 8, "amount": "5.00"},
        {"op": "deposit", "user_id": 8, "amount": "2.50"},
        {"op": "withdrawal", "user_id": 8, "amount": "1.00"},
        {"op": "withdrawal", "user_id": 8, "amount": "100.00"},  # refused
    ]
    answer = guarded.post("/v1/batches", json={"operations": lines}, headers=auth)
    assert answer.status_code == 200
    after = guarded.get("/metrics").text

    def moved(name: str, **labels: str) -> float:
        return counter(after, name, **labels) - counter(before, name, **labels)

    assert moved("balance_money_movements_total", kind="deposit", caller="") == 2
    assert moved("balance_money_moved_rubles_total", kind="deposit", caller="") == 7.5
    assert moved("balance_money_movements_total", kind="withdraw", caller="") == 1
    assert moved("balance_refusals_total", reason="insufficient-funds") == 1
    assert moved("balance_db_transactions_total") == 1
    assert moved("balance_batch_size_sum") == 4


def test_a_middleware_added_to_the_app_runs_on_the_money_routes_too() -> None:
    """One HTTP stack: what is added to Litestar applies to every route, deposits included."""
    seen: list[str] = []

    def stamp(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope["path"])
            if scope["path"] == "/v1/withdrawals":  # a guard: refuse before the handler
                await send({"type": "http.response.start", "status": 451, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            await app(scope, receive, send)

        return middleware

    settings = Settings.from_env({"BALANCE_STORE": "memory"})
    container = build_container(settings)
    services = container.services()
    app = create_app(lambda: services, middleware=[stamp])
    with TestClient(app) as client:
        deposit = client.post("/v1/deposits", json={"user_id": 1, "amount": "5"})
        refused = client.post("/v1/withdrawals", json={"user_id": 1, "amount": "5"})
        balance = client.get("/v1/users/1/balance")
    assert deposit.status_code == 201
    assert refused.status_code == 451
    assert balance.json()["available"] == "5.00"  # the guard refused before any write
    assert seen == ["/v1/deposits", "/v1/withdrawals", "/v1/users/1/balance"]


def test_expiry_is_counted_and_the_oldest_overdue_hold_is_reported() -> None:
    settings = Settings.from_env({"BALANCE_STORE": "memory", "EXPIRY_SWEEP_MS": "0"})
    container = build_container(settings)
    with TestClient(build_app(settings, container)) as client:
        client.post("/v1/deposits", json={"user_id": 1, "amount": "10"})
        for order in (1, 2):
            expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            body = {"user_id": 1, "service_id": 2, "order_id": order, "amount": "1"}
            client.post("/v1/reservations", json=body | {"expires_at": expires})
        before = client.get("/metrics").text
        store = container.memory.store()
        store.reservations[1].expires_at = datetime.now(UTC) - timedelta(seconds=30)
        store.reservations[2].expires_at = datetime.now(UTC) - timedelta(seconds=5)
        with client.portal() as portal:  # the app's own event loop
            swept = portal.call(container.sweeper().sweep)
        after = client.get("/metrics").text
    assert swept == 2
    assert (
        counter(after, "balance_reservations_expired_total")
        - counter(before, "balance_reservations_expired_total")
        == 2
    )
    assert 30 <= counter(after, "balance_reservation_overdue_seconds") < 40


class CommitFailsOnce(InMemoryMovementBatch):
    """The first commit of the process fails for a passing reason; the batch is retried."""

    failed = False

    async def commit(self) -> None:
        if not CommitFailsOnce.failed:
            CommitFailsOnce.failed = True
            raise StoreUnavailable("connection lost before COMMIT")
        await super().commit()


def test_a_retried_batch_counts_its_refusals_once() -> None:
    CommitFailsOnce.failed = False
    settings = Settings.from_env({"BALANCE_STORE": "memory"})
    container = build_container(settings)
    container.memory.movement_batch.override(
        providers.Factory(CommitFailsOnce, store=container.memory.store)
    )
    lines = [
        {"op": "deposit", "user_id": 9, "amount": "5.00"},
        {"op": "withdrawal", "user_id": 9, "amount": "100.00"},  # refused at each attempt
    ]
    with TestClient(build_app(settings, container)) as client:
        before = client.get("/metrics").text
        answer = client.post("/v1/batches", json={"operations": lines})
        after = client.get("/metrics").text
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == [201, 409]
    assert CommitFailsOnce.failed  # the batch did run twice
    moved = counter(after, "balance_refusals_total", reason="insufficient-funds")
    assert moved - counter(before, "balance_refusals_total", reason="insufficient-funds") == 1
    assert (
        counter(after, "balance_db_transactions_total")
        - counter(before, "balance_db_transactions_total")
        == 1
    )


def test_a_refusal_sent_again_under_its_key_counts_as_a_replay_not_a_refusal(
    guarded: TestClient[ASGIApp],
) -> None:
    """Retries of a refused key would otherwise raise the refusal rate the dashboards
    read, for one decision: it is counted once as a refusal, then as replays."""
    auth = {"Authorization": f"Bearer {ALL}"}
    single = {**auth, "Idempotency-Key": "metrics-refused"}
    body = {"user_id": 31, "amount": "5.00"}
    keyed = {"operations": [{"op": "withdrawal", **body, "idempotency_key": "metrics-op"}]}
    before = guarded.get("/metrics").text
    for _ in range(3):
        answer = guarded.post("/v1/withdrawals", json=body, headers=single)
        assert answer.status_code == 404
        batch = guarded.post("/v1/batches", json=keyed, headers=auth)
        assert [r["status"] for r in batch.json()["results"]] == [404]
    assert answer.headers["Idempotent-Replayed"] == "true"
    atomic = {"operations": [{"op": "withdrawal", **body}], "atomic": True}
    for _ in range(2):
        refused = guarded.post(
            "/v1/batches", json=atomic, headers={**auth, "Idempotency-Key": "metrics-batch"}
        )
        assert refused.status_code == 404
    assert refused.headers["Idempotent-Replayed"] == "true"
    deposit = {"operations": [{"op": "deposit", **body}]}
    for _ in range(2):  # and a batch's answer, sent again under its key
        guarded.post("/v1/batches", json=deposit, headers={**auth, "Idempotency-Key": "metrics-ok"})
    after = guarded.get("/metrics").text

    def moved(name: str, **labels: str) -> float:
        return counter(after, name, **labels) - counter(before, name, **labels)

    assert moved("balance_refusals_total", reason="user-not-found") == 3
    assert moved("balance_idempotent_replays_total", kind="withdraw") == 4
    assert moved("balance_idempotent_replays_total", kind="batch") == 2
    assert moved("balance_money_movements_total", kind="deposit", caller="") == 1
