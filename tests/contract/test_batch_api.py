"""`POST /v1/batches` over HTTP on both adapters: a batch answers what the single
endpoints answer one by one, an atomic batch is all or nothing, a malformed one is
refused whole."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from litestar.types import ASGIApp

from entrypoints.container import build_app, build_container
from entrypoints.settings import Settings
from tests import postgres

Op = dict[str, Any]
SINGLE = {
    "deposit": "/v1/deposits",
    "withdrawal": "/v1/withdrawals",
    "transfer": "/v1/transfers",
    "reserve": "/v1/reservations",
    "recognize": "/v1/reservations/{order_id}/recognize",
    "cancel": "/v1/reservations/{order_id}/cancel",
}
VARYING = {"transaction_id", "created_at", "closed_at"}

users = st.integers(1, 3)
orders = st.integers(1, 4)
amounts = st.integers(1, 900).map(lambda k: f"{k // 100}.{k % 100:02d}")
services = st.integers(1, 2)
operations = st.one_of(
    st.builds(lambda u, a: {"op": "deposit", "user_id": u, "amount": a}, users, amounts),
    st.builds(lambda u, a: {"op": "withdrawal", "user_id": u, "amount": a}, users, amounts),
    st.builds(
        lambda f, t, a: {"op": "transfer", "from_user_id": f, "to_user_id": t, "amount": a},
        users,
        users,
        amounts,
    ),
    st.builds(
        lambda u, s, o, a: {
            "op": "reserve",
            "user_id": u,
            "service_id": s,
            "order_id": o,
            "amount": a,
        },
        users,
        services,
        orders,
        amounts,
    ),
    st.builds(
        lambda o, u, s, a: {
            "op": "recognize",
            "order_id": o,
            "user_id": u,
            "service_id": s,
            "amount": a,
        },
        orders,
        users,
        services,
        amounts,
    ),
    st.builds(
        lambda o, u, s: {"op": "cancel", "order_id": o, "user_id": u, "service_id": s},
        orders,
        users,
        services,
    ),
)
batches = st.lists(operations, min_size=1, max_size=25)


class Service:
    """The app on one store, and how to empty that store."""

    def __init__(self, client: TestClient[ASGIApp], reset: Any) -> None:
        self.client = client
        self._reset = reset

    def reset(self) -> None:
        self._reset()

    def batch(self, ops: list[Op], atomic: bool = False, key: str | None = None) -> Any:
        headers = {"Idempotency-Key": key} if key is not None else {}
        return self.client.post(
            "/v1/batches", json={"operations": ops, "atomic": atomic}, headers=headers
        )

    def single(self, op: Op) -> tuple[int, Any]:
        body = {k: v for k, v in op.items() if k != "op"}
        path = SINGLE[op["op"]]
        if "{order_id}" in path:
            path = path.format(order_id=body.pop("order_id"))
        answer = self.client.post(path, json=body)
        return answer.status_code, answer.json()

    def state(self) -> Any:
        """What the ledger says, through the API: every balance and reservation."""
        found = {}
        for user in range(1, 4):
            answer = self.client.get(f"/v1/users/{user}/balance")
            found[f"user {user}"] = answer.json() if answer.status_code == 200 else None
        for order in range(1, 5):
            answer = self.client.get(f"/v1/reservations/{order}")
            found[f"order {order}"] = stable(answer.json()) if answer.status_code == 200 else None
        return found


def stable(body: Any) -> Any:
    """A body without what differs between two runs of the same requests."""
    if isinstance(body, dict):
        return {k: stable(v) for k, v in body.items() if k not in VARYING}
    if isinstance(body, list):
        return [stable(v) for v in body]
    return body


@contextmanager
def service_on(store: str, pg_url: str | None) -> Iterator[Service]:
    env = {"BALANCE_STORE": store, "LOG_LEVEL": "WARNING"}
    if pg_url is not None:
        env["DATABASE_URL"] = pg_url
    settings_ = Settings.from_env(env)
    container = build_container(settings_)
    with TestClient(build_app(settings_, container)) as client:

        def reset() -> None:
            if pg_url is not None:
                asyncio.run(postgres.truncate(pg_url))
            else:
                store_ = container.memory.store()
                for table in (store_.accounts, store_.reservations, store_.transactions):
                    table.clear()
                store_.idempotency.clear()

        reset()
        yield Service(client, reset)


@pytest.fixture(params=["memory", "postgres"])
def service(request: pytest.FixtureRequest) -> Iterator[Service]:
    if request.param == "memory":
        with service_on("memory", None) as found:
            yield found
    else:
        pg_url = request.getfixturevalue("pg_url")
        with service_on("postgres", pg_url) as found:
            yield found


PROPERTY = settings(
    max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


@PROPERTY
@given(ops=batches)
def test_a_batch_answers_what_the_single_endpoints_answer(service: Service, ops: list[Op]) -> None:
    service.reset()
    batched = service.batch(ops)
    assert batched.status_code == 200, batched.text
    results = [(r["status"], stable(r["body"])) for r in batched.json()["results"]]
    after_batch = service.state()
    service.reset()
    one_by_one = [(status, stable(body)) for status, body in map(service.single, ops)]
    assert results == one_by_one
    assert after_batch == service.state()


@PROPERTY
@given(setup=batches, ops=batches)
def test_an_atomic_batch_is_all_or_nothing(
    service: Service, setup: list[Op], ops: list[Op]
) -> None:
    service.reset()
    service.batch(setup)
    before = service.state()
    atomic = service.batch(ops, atomic=True)
    if atomic.status_code == 200:  # every operation applied, as a plain batch would
        after = service.state()
        service.reset()
        service.batch(setup)
        plain = service.batch(ops)
        assert stable(atomic.json()) == stable(plain.json())
        assert after == service.state()
        return
    assert service.state() == before  # nothing written
    problem = atomic.json()
    service.reset()
    service.batch(setup)
    plain = service.batch(ops).json()["results"]
    first = next(i for i, r in enumerate(plain) if r["status"] >= 400)
    assert atomic.status_code == plain[first]["status"]
    assert problem["type"] == plain[first]["body"]["type"]
    assert problem["errors"][0]["field"].startswith(f"operations[{first}]")


def test_a_new_user_pays_and_a_reservation_is_recognized_in_one_batch(service: Service) -> None:
    answer = service.batch(
        [
            {"op": "deposit", "user_id": 1, "amount": "10.00"},
            {"op": "transfer", "from_user_id": 1, "to_user_id": 2, "amount": "3.00"},
            {"op": "reserve", "user_id": 2, "service_id": 5, "order_id": 77, "amount": "2.00"},
            {"op": "recognize", "order_id": 77, "user_id": 2, "service_id": 5, "amount": "2.00"},
        ],
        atomic=True,
    )
    assert [r["status"] for r in answer.json()["results"]] == [201, 201, 201, 200]
    state = service.state()
    assert state["user 1"]["available"] == "7.00"
    assert (state["user 2"]["available"], state["user 2"]["reserved"]) == ("1.00", "0.00")
    assert state["order 4"] is None


def test_a_thousand_operations_on_one_hot_user(service: Service) -> None:
    ops: list[Op] = [{"op": "deposit", "user_id": 1, "amount": "1.00"} for _ in range(600)]
    ops += [{"op": "withdrawal", "user_id": 1, "amount": "1.50"} for _ in range(400)]
    answer = service.batch(ops)
    results = answer.json()["results"]
    assert len(results) == 1000
    available = [r["body"]["balance"]["available"] for r in results if r["status"] == 201]
    assert available[599] == "600.00"
    assert available[-1] == "0.00"
    assert [r["status"] for r in results].count(201) == 1000
    assert service.state()["user 1"]["available"] == "0.00"


def test_keys_replay_an_operation_and_the_whole_batch(service: Service) -> None:
    ops = [
        {"op": "deposit", "user_id": 1, "amount": "5.00", "idempotency_key": "line-1"},
        {"op": "deposit", "user_id": 1, "amount": "5.00", "idempotency_key": "line-1"},
        {"op": "withdrawal", "user_id": 1, "amount": "9.00", "idempotency_key": "line-2"},
    ]
    first = service.batch(ops, key="file-1")
    statuses = [r["status"] for r in first.json()["results"]]
    assert statuses == [201, 201, 409]  # the second line replays the first
    results = first.json()["results"]
    assert results[0] == results[1]
    assert service.batch(ops, key="file-1").content == first.content
    reused = service.batch(ops[:1], key="file-1")
    assert reused.status_code == 422
    again = service.batch([ops[0]])  # the line's own key, outside the file
    assert again.json()["results"][0] == results[0]
    assert service.state()["user 1"]["available"] == "5.00"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"operations": []}, 422, "operations"),
        (
            {"operations": [{"op": "deposit", "user_id": 1, "amount": "1"}] * 1001},
            422,
            "operations",
        ),
        ({"operations": [{"op": "bonus", "user_id": 1, "amount": "1"}]}, 422, "operations[0].op"),
        (
            {"operations": [{"op": "deposit", "user_id": 1, "amount": "1"}, {"op": "deposit"}]},
            422,
            "operations[1].user_id",
        ),
        (
            {"operations": [{"op": "deposit", "user_id": 1, "amount": 0.001}]},
            422,
            "operations[0].amount",
        ),
        (
            {"operations": [{"op": "deposit", "user_id": 1, "amount": "1", "idempotency_key": ""}]},
            422,
            "operations[0].idempotency_key",
        ),
        (
            {"operations": [{"op": "cancel", "user_id": 1, "service_id": 1}]},
            422,
            "operations[0].order_id",
        ),
        ({"operations": {"op": "deposit"}}, 422, "operations"),
        ({"operations": [{"op": "deposit", "user_id": 1, "amount": "1"}], "x": 1}, 422, "x"),
    ],
)
def test_a_malformed_batch_is_refused_whole(
    service: Service, body: dict[str, Any], status: int, field: str
) -> None:
    service.batch([{"op": "deposit", "user_id": 9, "amount": "1.00"}])
    before = service.state()
    answer = service.client.post("/v1/batches", json=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in answer.json()["errors"]], answer.json()
    assert service.state() == before


def test_body_limits_are_1_mib_for_batches_and_64_kib_elsewhere(service: Service) -> None:
    line = {"op": "deposit", "user_id": 1, "amount": "1.00", "description": "x" * 450}
    near = json.dumps({"operations": [line] * 1000}).encode()
    assert 500_000 < len(near) < 1024 * 1024
    headers = {"Content-Type": "application/json"}
    assert service.client.post("/v1/batches", content=near, headers=headers).status_code == 200
    too_big = b" " * (1024 * 1024) + b"{}"
    over = service.client.post("/v1/batches", content=too_big, headers=headers)
    assert over.status_code == 413
    single = json.dumps({"user_id": 1, "amount": "1", "description": " " * 70_000}).encode()
    assert service.client.post("/v1/deposits", content=single, headers=headers).status_code == 413


def test_a_keyed_refusal_is_the_keys_answer(service: Service) -> None:
    """The first answer under a key is its answer, a refusal too (README, decision 7):
    a retry is told the same refusal, byte for byte, after the money came, and moves
    nothing. In a batch, every key is answered: a refused operation's with its own
    refusal, one that an atomic batch's refusal undid with `refused-with-batch`."""
    post = service.client.post
    post("/v1/deposits", json={"user_id": 1, "amount": "5.00"})
    withdrawal = {"user_id": 1, "amount": "9.00"}
    first = post("/v1/withdrawals", json=withdrawal, headers={"Idempotency-Key": "w-1"})
    assert first.status_code == 409
    post("/v1/deposits", json={"user_id": 1, "amount": "10.00"})
    again = post("/v1/withdrawals", json=withdrawal, headers={"Idempotency-Key": "w-1"})
    assert (again.status_code, again.content) == (409, first.content)
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["available"] == "5.00"  # the numbers it was refused for
    assert service.state()["user 1"]["available"] == "15.00"
    other = post("/v1/withdrawals", json=withdrawal, headers={"Idempotency-Key": "w-2"})
    assert other.status_code == 201

    line = {"op": "withdrawal", "user_id": 1, "amount": "90.00", "idempotency_key": "line-9"}
    (result,) = service.batch([line]).json()["results"]
    assert result["status"] == 409
    alone = post(
        "/v1/withdrawals",
        json=withdrawal | {"amount": "90.00"},
        headers={"Idempotency-Key": "line-9"},
    )
    assert (alone.status_code, alone.json()) == (409, result["body"])
    assert service.batch([line]).json()["results"] == [result]

    ops = [
        {"op": "deposit", "user_id": 1, "amount": "1.00", "idempotency_key": "a-1"},
        {"op": "withdrawal", "user_id": 1, "amount": "900.00", "idempotency_key": "a-2"},
    ]
    refused = service.batch(ops, atomic=True, key="file-2")
    assert refused.status_code == 409
    assert [e["field"] for e in refused.json()["errors"]] == ["operations[1].amount"]
    replayed = service.batch(ops, atomic=True, key="file-2")
    assert (replayed.status_code, replayed.content) == (409, refused.content)
    undone = post(
        "/v1/deposits", json={"user_id": 1, "amount": "1.00"}, headers={"Idempotency-Key": "a-1"}
    )
    assert undone.status_code == 409
    assert undone.json()["type"] == "/problems/refused-with-batch"
    assert undone.json()["detail"] == "not applied: operations[1] of its atomic batch was refused"
    assert undone.json()["errors"] == [
        {"field": "Idempotency-Key", "message": undone.json()["detail"]}
    ]
    own = post(
        "/v1/withdrawals",
        json={"user_id": 1, "amount": "900.00"},
        headers={"Idempotency-Key": "a-2"},
    )
    assert own.json()["type"] == "/problems/insufficient-funds"
    unkeyed = service.batch(ops, atomic=True)  # the operations' keys still answer
    assert unkeyed.status_code == 409
    assert unkeyed.json()["errors"] == [
        {"field": "operations[0].Idempotency-Key", "message": undone.json()["detail"]}
    ]
    assert unkeyed.json()["detail"] == "operations[0]: " + undone.json()["detail"]
    assert service.state()["user 1"]["available"] == "6.00"


def test_an_answer_sent_again_under_its_key_says_so(service: Service) -> None:
    """`Idempotent-Replayed: true` on an answer sent again under its key, a success or a
    refusal, a single request's or a batch's; never on one answered now (a batch that
    repeats a keyed operation answers now)."""
    post = service.client.post

    def send() -> list[Any]:
        """A keyed deposit, a keyed withdrawal refused, a batch, an atomic batch refused."""
        return [
            post("/v1/deposits", json={"user_id": 1, "amount": "5.00"}, headers=key("d-1")),
            post("/v1/withdrawals", json={"user_id": 1, "amount": "9.00"}, headers=key("w-1")),
            service.batch([{"op": "deposit", "user_id": 1, "amount": "1.00"}], key="b-1"),
            service.batch(
                [{"op": "withdrawal", "user_id": 1, "amount": "90.00"}], atomic=True, key="b-2"
            ),
        ]

    def key(value: str) -> dict[str, str]:
        return {"Idempotency-Key": value}

    sent, again = send(), send()
    assert [a.status_code for a in sent] == [201, 409, 200, 409]
    assert [(a.status_code, a.content) for a in again] == [(a.status_code, a.content) for a in sent]
    assert [a.headers.get("idempotent-replayed") for a in sent] == [None] * 4
    assert [a.headers.get("idempotent-replayed") for a in again] == ["true"] * 4
    repeats = service.batch(
        [{"op": "deposit", "user_id": 1, "amount": "5.00", "idempotency_key": "d-1"}]
    )
    assert repeats.json()["results"][0]["body"] == sent[0].json()
    assert "idempotent-replayed" not in repeats.headers
