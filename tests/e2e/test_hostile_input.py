"""Hostile input against the real server on PostgreSQL: each refusal is a problem+json
naming what is wrong, and writes nothing; hostile text that is valid is stored
verbatim, never executed."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from tests import postgres
from tests.servers import ServerProcess, fresh_server

pytestmark = pytest.mark.postgres

SQL = "'; DROP TABLE entries; --"
SQL_OR = "1' OR '1'='1"
BIG = 2**63
JSON_TYPE = {"Content-Type": "application/json"}
BODY_TIMEOUT = 1.0


STATE = (
    "SELECT * FROM accounts ORDER BY user_id",
    "SELECT count(*), max(id) FROM transactions",
    "SELECT count(*), max(id) FROM entries",
    "SELECT * FROM reservations ORDER BY order_id",
    "SELECT key FROM idempotency_keys ORDER BY key",
    "SELECT * FROM services ORDER BY service_id",
)


@dataclass
class Target:
    api: httpx.Client
    url: str

    def state(self) -> tuple[Any, ...]:
        async def read() -> tuple[Any, ...]:
            db = await asyncpg.connect(self.url)
            try:
                return tuple([[tuple(r.values()) for r in await db.fetch(q)] for q in STATE])
            finally:
                await db.close()

        return asyncio.run(read())


@pytest.fixture(scope="module")
def target(pg_server: str) -> Iterator[Target]:
    name = postgres.unique_name()
    url = asyncio.run(postgres.create_database(pg_server, name))
    body_timeout = str(int(BODY_TIMEOUT * 1000))
    server = ServerProcess({"DATABASE_URL": url, "BODY_TIMEOUT_MS": body_timeout}, workers=1)
    try:
        server.start()
        with httpx.Client(base_url=server.base_url, timeout=30) as api:
            for body in ({"user_id": 1, "amount": "100.00"}, {"user_id": 2, "amount": "5"}):
                assert api.post("/v1/deposits", json=body).status_code == 201
            order = {"user_id": 1, "service_id": 3, "order_id": 5, "amount": "10"}
            assert api.post("/v1/reservations", json=order).status_code == 201
            assert api.put("/v1/services/3", json={"name": "Delivery"}).status_code == 200
            yield Target(api, url)
    finally:
        server.kill()
        asyncio.run(postgres.drop_database(pg_server, name))


def deposit(**change: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"user_id": 1, "amount": "1.00"}
    for key, value in change.items():
        if value is ...:
            del body[key]
        else:
            body[key] = value
    return body


def limits(credit_limit: Any) -> dict[str, Any]:
    return {"credit_limit": credit_limit, "frozen": False}


def legs(*amounts: float, users: list[int] | None = None) -> dict[str, Any]:
    users = users or list(range(1, len(amounts) + 1))
    return {"legs": [{"user_id": u, "amount": a} for u, a in zip(users, amounts, strict=True)]}


# (name, method, path, body: JSON value, or bytes sent as they are, headers, status, field)
Case = tuple[str, str, str, Any, dict[str, str], int, str | None]
REFUSALS: list[Case] = [
    # wrong types and missing fields
    ("amount as text", "POST", "/v1/deposits", deposit(amount="abc"), {}, 422, "amount"),
    ("amount null", "POST", "/v1/deposits", deposit(amount=None), {}, 422, "amount"),
    ("amount true", "POST", "/v1/deposits", deposit(amount=True), {}, 422, "amount"),
    ("amount list", "POST", "/v1/deposits", deposit(amount=[1]), {}, 422, "amount"),
    ("amount object", "POST", "/v1/deposits", deposit(amount={"v": 1}), {}, 422, "amount"),
    ("amount missing", "POST", "/v1/deposits", deposit(amount=...), {}, 422, "amount"),
    ("user_id as text", "POST", "/v1/deposits", deposit(user_id="1"), {}, 422, "user_id"),
    ("user_id float", "POST", "/v1/deposits", deposit(user_id=1.5), {}, 422, "user_id"),
    ("user_id null", "POST", "/v1/deposits", deposit(user_id=None), {}, 422, "user_id"),
    ("user_id missing", "POST", "/v1/deposits", deposit(user_id=...), {}, 422, "user_id"),
    ("description number", "POST", "/v1/deposits", deposit(description=5), {}, 422, "description"),
    ("unknown field", "POST", "/v1/deposits", deposit(admin=True), {}, 422, "admin"),
    ("body is a list", "POST", "/v1/deposits", [deposit()], {}, 422, "body"),
    ("body is a string", "POST", "/v1/deposits", "deposit", {}, 422, "body"),
    ("body is null", "POST", "/v1/deposits", None, {}, 422, "body"),
    # numbers that are not money
    ("3 decimals, float", "POST", "/v1/deposits", deposit(amount=150.255), {}, 422, "amount"),
    ("3 decimals, text", "POST", "/v1/deposits", deposit(amount="150.255"), {}, 422, "amount"),
    ("0.001", "POST", "/v1/deposits", deposit(amount="0.001"), {}, 422, "amount"),
    ("1e400", "POST", "/v1/deposits", b'{"user_id": 1, "amount": 1e400}', {}, 422, "amount"),
    ("1e30", "POST", "/v1/deposits", b'{"user_id": 1, "amount": 1e30}', {}, 422, "amount"),
    (
        "1E+1000000",
        "POST",
        "/v1/deposits",
        b'{"user_id": 1, "amount": 1E+1000000}',
        {},
        422,
        "amount",
    ),
    (
        "above the maximum",
        "POST",
        "/v1/deposits",
        deposit(amount="10000000000000.01"),
        {},
        422,
        "amount",
    ),
    ("NaN text", "POST", "/v1/deposits", deposit(amount="NaN"), {}, 422, "amount"),
    ("Infinity text", "POST", "/v1/deposits", deposit(amount="Infinity"), {}, 422, "amount"),
    ("-Infinity text", "POST", "/v1/deposits", deposit(amount="-Infinity"), {}, 422, "amount"),
    ("NaN literal", "POST", "/v1/deposits", b'{"user_id": 1, "amount": NaN}', {}, 400, "body"),
    (
        "Infinity literal",
        "POST",
        "/v1/deposits",
        b'{"user_id": 1, "amount": Infinity}',
        {},
        400,
        "body",
    ),
    ("negative zero", "POST", "/v1/deposits", b'{"user_id": 1, "amount": -0.0}', {}, 422, "amount"),
    ("negative zero text", "POST", "/v1/deposits", deposit(amount="-0"), {}, 422, "amount"),
    ("zero", "POST", "/v1/deposits", deposit(amount=0), {}, 422, "amount"),
    ("negative", "POST", "/v1/deposits", deposit(amount="-1.00"), {}, 422, "amount"),
    ("exponent text", "POST", "/v1/deposits", deposit(amount="1e2"), {}, 422, "amount"),
    ("padded text", "POST", "/v1/deposits", deposit(amount=" 1"), {}, 422, "amount"),
    ("signed text", "POST", "/v1/deposits", deposit(amount="+1"), {}, 422, "amount"),
    ("underscored text", "POST", "/v1/deposits", deposit(amount="1_000"), {}, 422, "amount"),
    # ids out of range
    ("user_id 0", "POST", "/v1/deposits", deposit(user_id=0), {}, 422, "user_id"),
    ("user_id -1", "POST", "/v1/deposits", deposit(user_id=-1), {}, 422, "user_id"),
    ("user_id 2^63", "POST", "/v1/deposits", deposit(user_id=BIG), {}, 422, "user_id"),
    (
        "to_user_id 2^63",
        "POST",
        "/v1/transfers",
        {"from_user_id": 1, "to_user_id": BIG, "amount": "1"},
        {},
        422,
        "to_user_id",
    ),
    (
        "order_id 0",
        "POST",
        "/v1/reservations",
        {"user_id": 1, "service_id": 1, "order_id": 0, "amount": "1"},
        {},
        422,
        "order_id",
    ),
    (
        "service_id -1",
        "POST",
        "/v1/reservations",
        {"user_id": 1, "service_id": -1, "order_id": 6, "amount": "1"},
        {},
        422,
        "service_id",
    ),
    (
        "path order 0",
        "POST",
        "/v1/reservations/0/cancel",
        {"user_id": 1, "service_id": 3},
        {},
        422,
        "order_id",
    ),
    (
        "path order -1",
        "POST",
        "/v1/reservations/-1/recognize",
        {"user_id": 1, "service_id": 3, "amount": "1"},
        {},
        422,
        "order_id",
    ),
    (
        "path order 2^63",
        "POST",
        f"/v1/reservations/{BIG}/cancel",
        {"user_id": 1, "service_id": 3},
        {},
        422,
        "order_id",
    ),
    ("path user 2^63", "GET", f"/v1/users/{BIG}/balance", None, {}, 422, "user_id"),
    ("path service 0", "PUT", "/v1/services/0", {"name": "x"}, {}, 422, "service_id"),
    # text that is not allowed
    (
        "NUL in description",
        "POST",
        "/v1/deposits",
        deposit(description="a\x00b"),
        {},
        422,
        "description",
    ),
    (
        "newline in description",
        "POST",
        "/v1/deposits",
        deposit(description="a\nb"),
        {},
        422,
        "description",
    ),
    (
        "DEL in description",
        "POST",
        "/v1/deposits",
        deposit(description="a\x7fb"),
        {},
        422,
        "description",
    ),
    (
        "description too long",
        "POST",
        "/v1/deposits",
        deposit(description="я" * 501),
        {},
        422,
        "description",
    ),
    ("empty service name", "PUT", "/v1/services/3", {"name": ""}, {}, 422, "name"),
    ("control chars in name", "PUT", "/v1/services/3", {"name": "a\tb"}, {}, 422, "name"),
    ("one control char in a name", "PUT", "/v1/services/3", {"name": "ab\x01cd"}, {}, 422, "name"),
    ("a bare NaN body", "POST", "/v1/deposits", b"NaN", {}, 400, "body"),
    (
        "a control char in description",
        "POST",
        "/v1/deposits",
        deposit(description="a\x01"),
        {},
        422,
        "description",
    ),
    ("a report without to", "GET", "/v1/reports/revenue.csv?from=2022-01-01", None, {}, 422, "to"),
    ("limit 0", "GET", "/v1/events?limit=0", None, {}, 422, "limit"),
    (
        "a report year 1999",
        "POST",
        "/v1/reports/revenue",
        {"year": 1999, "month": 1},
        {},
        422,
        "year",
    ),
    # bodies that are not JSON, or too big
    ("truncated JSON", "POST", "/v1/deposits", b'{"user_id": 1,', {}, 400, "body"),
    ("not UTF-8", "POST", "/v1/deposits", b'{"user_id": 1, "amount": "\xff"}', {}, 400, "body"),
    (
        "half a surrogate pair",
        "POST",
        "/v1/deposits",
        b'{"user_id": 1, "amount": "1", "description": "\\ud800"}',
        {},
        400,
        "body",
    ),
    ("empty body", "POST", "/v1/deposits", b"", {}, 400, "body"),
    ("an unknown route", "POST", "/v1/deposit", deposit(), {}, 404, "path"),
    ("a method the route does not take", "PUT", "/v1/deposits", deposit(), {}, 405, "method"),
    (
        "duplicate keys",
        "POST",
        "/v1/deposits",
        b'{"user_id": 1, "amount": "1", "amount": "2"}',
        {},
        422,
        "amount",
    ),
    (
        "1 MB body",
        "POST",
        "/v1/deposits",
        json.dumps(deposit(description="x" * 2**20)).encode(),
        {},
        413,
        None,
    ),
    ("10 MB body", "POST", "/v1/deposits", b"{" + b" " * 10 * 2**20 + b"}", {}, 413, None),
    (
        "text/plain",
        "POST",
        "/v1/deposits",
        json.dumps(deposit()).encode(),
        {"Content-Type": "text/plain"},
        415,
        "Content-Type",
    ),
    (
        "form post",
        "POST",
        "/v1/deposits",
        b"user_id=1&amount=1",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "Content-Type",
    ),
    (
        "latin-1 JSON",
        "POST",
        "/v1/deposits",
        json.dumps(deposit()).encode(),
        {"Content-Type": "application/json; charset=latin-1"},
        415,
        "Content-Type",
    ),
    # Idempotency-Key
    (
        "key of 256 chars",
        "POST",
        "/v1/deposits",
        deposit(),
        {"Idempotency-Key": "k" * 256},
        422,
        "Idempotency-Key",
    ),
    (
        "key of 8 KiB",
        "POST",
        "/v1/deposits",
        deposit(),
        {"Idempotency-Key": "k" * 8192},
        422,
        "Idempotency-Key",
    ),
    (
        "empty key",
        "POST",
        "/v1/deposits",
        deposit(),
        {"Idempotency-Key": ""},
        422,
        "Idempotency-Key",
    ),
    (
        "tab in key",
        "POST",
        "/v1/deposits",
        deposit(),
        {"Idempotency-Key": "a\tb"},
        422,
        "Idempotency-Key",
    ),
    # limits
    *(
        (f"credit_limit {v!r}", "PUT", "/v1/users/1/limits", limits(v), {}, 422, "credit_limit")
        for v in ("-1", "abc", 1e30, "0.001", None, "1e2")
    ),
    ("frozen missing", "PUT", "/v1/users/1/limits", {"credit_limit": "1"}, {}, 422, "frozen"),
    (
        "frozen as text",
        "PUT",
        "/v1/users/1/limits",
        {"credit_limit": "1", "frozen": "yes"},
        {},
        422,
        "frozen",
    ),
    # multi-leg movements
    ("legs summing to 0.01", "POST", "/v1/movements", legs(-1, 1.01), {}, 422, "legs"),
    (
        "a user twice",
        "POST",
        "/v1/movements",
        legs(-1, 1, users=[1, 1]),
        {},
        422,
        "legs[1].user_id",
    ),
    ("101 legs", "POST", "/v1/movements", legs(-100, *[1] * 100), {}, 422, "legs"),
    ("one leg", "POST", "/v1/movements", legs(0), {}, 422, "legs"),
    ("a zero leg", "POST", "/v1/movements", legs(0, 0), {}, 422, "legs[0].amount"),
    (
        "a leg of 3 decimals",
        "POST",
        "/v1/movements",
        legs(-1.005, 1.005),
        {},
        422,
        "legs[0].amount",
    ),
    (
        "a leg above the maximum",
        "POST",
        "/v1/movements",
        legs(-10000000000000.01, 10000000000000.01),
        {},
        422,
        "legs[0].amount",
    ),
    ("a leg short of money", "POST", "/v1/movements", legs(-1000, 1000), {}, 409, "legs[0].amount"),
    (
        "a leg of nobody",
        "POST",
        "/v1/movements",
        legs(-1, 1, users=[404, 1]),
        {},
        404,
        "legs[0].user_id",
    ),
    # metadata
    (
        "metadata of 21 keys",
        "POST",
        "/v1/deposits",
        deposit(metadata={f"k{i}": "v" for i in range(21)}),
        {},
        422,
        "metadata",
    ),
    (
        "a 41-character key",
        "POST",
        "/v1/deposits",
        deposit(metadata={"k" * 41: "v"}),
        {},
        422,
        "metadata." + "k" * 41,
    ),
    (
        "a value not text",
        "POST",
        "/v1/deposits",
        deposit(metadata={"order": 77}),
        {},
        422,
        "metadata.order",
    ),
    (
        "a value of 501 characters",
        "POST",
        "/v1/transfers",
        {"from_user_id": 1, "to_user_id": 2, "amount": "1", "metadata": {"v": "x" * 501}},
        {},
        422,
        "metadata.v",
    ),
    (
        "NUL in a value",
        "POST",
        "/v1/deposits",
        deposit(metadata={"v": "a\x00"}),
        {},
        422,
        "metadata.v",
    ),
    ("metadata null", "POST", "/v1/deposits", deposit(metadata=None), {}, 422, "metadata"),
    ("metadata a list", "POST", "/v1/deposits", deposit(metadata=["a"]), {}, 422, "metadata"),
    (
        "a batch operation's metadata",
        "POST",
        "/v1/batches",
        {"operations": [{"op": "deposit", "user_id": 1, "amount": "1", "metadata": {"a": 1}}]},
        {},
        422,
        "operations[0].metadata.a",
    ),
    (
        "a batch movement's leg",
        "POST",
        "/v1/batches",
        {"operations": [{"op": "movement", **legs(-1, 1.5)}]},
        {},
        422,
        "operations[0].legs",
    ),
    (
        "a metadata filter key",
        "GET",
        "/v1/users/1/transactions?metadata.a%20b=1",
        None,
        {},
        422,
        "metadata.a b",
    ),
    (
        "a balance past the most one account holds (user 1 holds 100.00)",
        "POST",
        "/v1/batches",
        {
            "atomic": True,
            "operations": [
                {"op": "deposit", "user_id": 1, "amount": "10000000000000"} for _ in range(100)
            ],
        },
        {},
        409,
        "operations[99].amount",
    ),
    # SQL where only a value of a kind is allowed
    ("SQL in cursor", "GET", f"/v1/users/1/transactions?cursor={SQL}", None, {}, 422, "cursor"),
    ("SQL in kind", "GET", f"/v1/users/1/transactions?kind={SQL}", None, {}, 422, "kind"),
    ("SQL in sort", "GET", f"/v1/users/1/transactions?sort={SQL_OR}", None, {}, 422, "sort"),
    ("SQL in from", "GET", f"/v1/users/1/transactions?from={SQL_OR}", None, {}, 422, "from"),
    ("SQL in as_of", "GET", f"/v1/users/1/balance?as_of={SQL}", None, {}, 422, "as_of"),
    ("SQL in limit", "GET", f"/v1/users/1/transactions?limit={SQL_OR}", None, {}, 422, "limit"),
    (
        "SQL in period",
        "GET",
        "/v1/reports/revenue/2022-11'%20OR%20'1'='1.csv",
        None,
        {},
        422,
        "period",
    ),
    (
        "SQL in report dates",
        "GET",
        f"/v1/reports/revenue.csv?from={SQL_OR}&to=2022-12-01",
        None,
        {},
        422,
        "from",
    ),
    ("SQL in user path", "GET", "/v1/users/1%20OR%201=1/balance", None, {}, 422, "user_id"),
    ("user_id abc in a path", "GET", "/v1/users/abc/balance", None, {}, 422, "user_id"),
    (
        "order_id abc in a path",
        "POST",
        "/v1/reservations/abc/cancel",
        {"user_id": 1, "service_id": 3},
        {},
        422,
        "order_id",
    ),
    ("month 13", "POST", "/v1/reports/revenue", {"year": 2022, "month": 13}, {}, 422, "month"),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case[0]) for case in REFUSALS])
def test_refused_with_the_field_named_and_nothing_written(target: Target, case: Case) -> None:
    _, method, path, body, headers, status, field = case
    before = target.state()
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    send_headers = {**JSON_TYPE, **headers} if method != "GET" else headers
    response = target.api.request(
        method, path, content=content if method != "GET" else None, headers=send_headers
    )
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    # One shape for every refusal: each names what it is about.
    assert problem["errors"], problem
    assert all(e["field"] for e in problem["errors"]), problem
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]], problem
    assert target.state() == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/deposits", deposit()),
        ("/v1/reservations/5/cancel", {"user_id": 1, "service_id": 3}),
        ("/v1/batches", {"operations": [{"op": "deposit", **deposit()}]}),
    ],
)
def test_an_idempotency_key_given_twice_is_refused_and_writes_nothing(
    target: Target, path: str, body: dict[str, Any]
) -> None:
    """Two headers, not one joined by a proxy (`k-1, k-2`, a key like any other): which
    one a retry sent another way would carry is anyone's guess, so neither counts."""
    before = target.state()
    for keys in (("k-1", "k-2"), ("k-2", "k-1"), ("k-1", "k-1")):
        headers = [*JSON_TYPE.items(), *(("Idempotency-Key", key) for key in keys)]
        response = target.api.post(path, content=json.dumps(body).encode(), headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["errors"] == [
            {"field": "Idempotency-Key", "message": "is given more than once"}
        ]
    assert target.state() == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/deposits", deposit()),
        ("POST", "/v1/reservations/5/cancel", {"user_id": 1, "service_id": 3}),
        ("POST", "/v1/batches", {"operations": [{"op": "deposit", **deposit()}]}),
        ("PUT", "/v1/users/1/limits", {"credit_limit": "10", "frozen": True}),
        ("PUT", "/v1/services/3", {"name": "Delivery"}),
        ("POST", "/v1/reports/revenue", {"year": 2022, "month": 11}),
    ],
)
@pytest.mark.parametrize("second", ["text/plain", "application/json"])
def test_a_content_type_given_twice_is_415_and_writes_nothing(
    target: Target, method: str, path: str, body: dict[str, Any], second: str
) -> None:
    """Which of two types a proxy passes on is anyone's guess (json then text was read
    as JSON, text then json refused): neither counts, on every route with a body."""
    before = target.state()
    for types in (("application/json", second), (second, "application/json")):
        headers = [("Content-Type", t) for t in types]
        response = target.api.request(
            method, path, content=json.dumps(body).encode(), headers=headers
        )
        assert response.status_code == 415, response.text
        assert response.json()["errors"] == [
            {"field": "Content-Type", "message": "is given more than once"}
        ]
    assert target.state() == before


def test_two_authorization_headers_are_refused_and_write_nothing(pg_server: str) -> None:
    """Two tokens, each valid, one that may write and one that may only read: which one
    a proxy passes on is anyone's guess, so neither counts, in either order."""
    writer, reader = "writer-token-0123456789", "reader-token-0123456789"
    tokens = f"{writer}=read+write,{reader}=read"
    with (
        fresh_server(pg_server, {"BALANCE_API_TOKENS": tokens}) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as api,
    ):
        one = {"Authorization": f"Bearer {writer}"}
        assert api.post("/v1/deposits", json=deposit(), headers=one).status_code == 201
        balance = api.get("/v1/users/1/balance", headers=one).json()
        for first, second in ((writer, reader), (reader, writer), (writer, writer)):
            headers = [("Authorization", f"Bearer {t}") for t in (first, second)]
            for method, path in (("POST", "/v1/deposits"), ("GET", "/v1/users/1/balance")):
                body = json.dumps(deposit()).encode() if method == "POST" else None
                refused = api.request(
                    method, path, content=body, headers=[*JSON_TYPE.items(), *headers]
                )
                assert refused.status_code == 401, refused.text
                assert "invalid_request" in refused.headers["www-authenticate"]
                assert refused.json()["errors"] == [
                    {
                        "field": "Authorization",
                        "message": "the Authorization header is given more than once",
                    }
                ]
        assert api.get("/v1/users/1/balance", headers=one).json() == balance


def answered(target: Target, route: str) -> Counter[str]:
    """How many requests to `route` /metrics counts, by status."""
    line = re.compile(
        rf'^balance_http_requests_total{{method="POST",route="{route}",status="(\d+)"}} (\S+)$'
    )
    found = (line.match(row) for row in target.api.get("/metrics").text.splitlines())
    return Counter({m.group(1): int(float(m.group(2))) for m in found if m})


def raw_post(target: Target, path: str, length: int) -> socket.socket:
    """A connection that sent a POST's headers, announcing `length` bytes of body."""
    url = httpx.URL(target.api.base_url)
    client = socket.create_connection((url.host, url.port))
    client.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {url.host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n".encode()
    )
    return client


@pytest.mark.parametrize("path", ["/v1/deposits", "/v1/batches"])
def test_a_client_gone_before_its_whole_body_came_is_no_500(target: Target, path: str) -> None:
    """Not the service's failure: 499 in the access log and the metrics, as nginx says
    it, and not a 500 that would count towards the 5xx alert."""
    before, counted = target.state(), answered(target, path)
    with raw_post(target, path, 100) as client:
        client.sendall(b'{"user_id": 1,')
        time.sleep(0.2)  # the body's first bytes read, the rest awaited
    for _ in range(200):
        now = answered(target, path)
        if now != counted:
            break
        time.sleep(0.02)
    assert now - counted == Counter({"499": 1}), (counted, now)
    assert target.state() == before


def answer_to(client: socket.socket, within: float) -> tuple[int, Any]:
    """The status and the JSON body the server answered on `client`."""
    client.settimeout(within)
    data = b""
    while (whole := _answer(data)) is None:
        chunk = client.recv(65536)
        assert chunk, data
        data += chunk
    return whole


def _answer(data: bytes) -> tuple[int, Any] | None:
    head, blank, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: (\d+)", head)
    if not blank or length is None or len(body) < int(length.group(1)):
        return None
    return int(head.split()[1]), json.loads(body)


def test_head_then_get_on_one_connection(target: Target) -> None:
    """granian sends the HEAD answer's Content-Length without the content, and the
    connection goes on: the GET sent right behind it is answered whole."""
    url = httpx.URL(target.api.base_url)
    with socket.create_connection((url.host, url.port), timeout=5) as client:
        ask = f"HTTP/1.1\r\nHost: {url.host}\r\n\r\n"
        client.sendall(f"HEAD /v1/users/1/balance {ask}GET /v1/users/1/balance {ask}".encode())
        data = b""
        while data.count(b"HTTP/1.1 200") < 2 or _answer(data.split(b"\r\n\r\n", 1)[1]) is None:
            chunk = client.recv(65536)
            assert chunk, data
            data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    got = target.api.get("/v1/users/1/balance")
    length = re.search(rb"(?im)^content-length: (\d+)", head)
    assert length is not None, head
    assert int(length.group(1)) == len(got.content), head
    assert rest.startswith(b"HTTP/1.1 200"), rest  # no content came between the two
    assert _answer(rest) == (200, got.json())


@pytest.mark.parametrize("path", ["/v1/deposits", "/v1/batches"])
def test_a_body_that_stops_coming_is_408_and_writes_nothing(target: Target, path: str) -> None:
    """Headers, a first part of the body, then silence: answered once no part came
    for BODY_TIMEOUT_MS, not held for as long as the client keeps the connection."""
    before, counted = target.state(), answered(target, path)
    with raw_post(target, path, 100) as client:
        client.sendall(b'{"user_id": 1,')
        started = time.monotonic()
        status, problem = answer_to(client, within=BODY_TIMEOUT * 5)
        waited = time.monotonic() - started
    assert status == 408, problem
    assert problem["errors"] == [
        {"field": "body", "message": f"no part of the body came for {BODY_TIMEOUT:g} s"}
    ]
    assert BODY_TIMEOUT <= waited < BODY_TIMEOUT * 2.5, waited
    assert answered(target, path) - counted == Counter({"408": 1})
    assert target.state() == before


def test_a_slow_body_that_keeps_coming_is_not_cut(target: Target) -> None:
    """The limit is for each part, as nginx's `client_body_timeout`: a body sent in
    parts over twice the limit, none of them late, is read whole."""
    body = json.dumps(deposit(user_id=2, amount="1.00")).encode()
    parts = [body[i : i + 8] for i in range(0, len(body), 8)]
    with raw_post(target, "/v1/deposits", len(body)) as client:
        started = time.monotonic()
        for part in parts:
            client.sendall(part)
            time.sleep(BODY_TIMEOUT * 2.5 / len(parts))
        assert time.monotonic() - started > BODY_TIMEOUT * 2
        status, moved = answer_to(client, within=10)
    assert status == 201, moved
    assert moved["amount"] == "1.00"


@pytest.mark.parametrize(
    "text",
    [
        SQL,
        SQL_OR,
        "Оплата заказа №5 🚀 中文 ﷺ",
        "\u202eRTL override\u202c and zero\u200bwidth",
        "$$; SELECT pg_sleep(10); $$",
        "\\x00 looks like NUL but is text",
    ],
)
def test_hostile_text_is_stored_verbatim(target: Target, text: str) -> None:
    key = f"verbatim-{SQL}-\\\\x27\\\\-{abs(hash(text))}"  # quotes and backslashes
    moved = target.api.post(
        "/v1/deposits", json=deposit(user_id=2, description=text), headers={"Idempotency-Key": key}
    )
    assert moved.status_code == 201, moved.text
    page = target.api.get("/v1/users/2/transactions", params={"limit": 1}).json()
    assert page["items"][0]["description"] == f"Deposit: {text}"
    assert target.api.put("/v1/services/4", json={"name": text}).json()["name"] == text
    names = {s["service_id"]: s["name"] for s in target.api.get("/v1/services").json()["items"]}
    assert names[4] == text
    again = target.api.post(
        "/v1/deposits", json=deposit(user_id=2, description=text), headers={"Idempotency-Key": key}
    )
    assert again.content == moved.content
    tables = target.state()
    assert (key,) in tables[4]  # the key is stored exactly as sent
    assert len(tables[0]) == 2
    assert tables[2][0][0] > 0
