"""Every route and refusal of API.md through the real app on the memory store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from application.errors import OperationRefused, RefusedBefore, RefusedWithBatch
from application.ports import StoredResponse
from domain.errors import InsufficientFunds
from domain.money import AMOUNT_RULE, LEG_AMOUNT_RULE
from entrypoints.http.decoding import RequestInvalid
from entrypoints.http.money import idempotency_key
from entrypoints.http.problems import refusal, stored_refusal
from tests.http_api import PROBLEM, Api


def test_deposit_answers_with_the_balance(api: Api) -> None:
    response = api.post("/v1/deposits", {"user_id": 1, "amount": "150.25", "description": "card"})
    assert response.status_code == 201
    body = response.json()
    assert body["amount"] == "150.25"
    assert body["balance"] == {"user_id": 1, "available": "150.25", "reserved": "0.00"}
    assert {"transaction_id", "created_at"} <= body.keys()
    assert (
        api.post("/v1/deposits", {"user_id": 1, "amount": 0.75}).json()["balance"]["available"]
        == "151.00"
    )


def test_json_answers_carry_their_media_type_and_exact_length(api: Api) -> None:
    """Money routes and reads answer through JsonAnswer, not Litestar's Response: the
    same two headers (besides the request id) it sent."""
    answers = [
        api.post("/v1/deposits", {"user_id": 1, "amount": "10"}),
        api.post("/v1/reservations", {"user_id": 1, "service_id": 2, "order_id": 3, "amount": "1"}),
        api.client.get("/v1/reservations/3"),
        api.client.get("/v1/users/1/balance"),
        api.client.get("/v1/users/1/transactions", params={"limit": 2}),
        api.client.get("/v1/events", params={"after": 0, "limit": 2}),
        api.post("/v1/batches", {"operations": [{"op": "deposit", "user_id": 1, "amount": "1"}]}),
    ]
    for response in answers:
        assert response.status_code in (200, 201), response.text
        headers = {k: v for k, v in response.headers.items() if k != "x-request-id"}
        assert headers == {
            "content-type": "application/json",
            "content-length": str(len(response.content)),
        }


def test_balance_of_known_and_unknown_users(api: Api) -> None:
    api.post("/v1/deposits", {"user_id": 1, "amount": "10"})
    response = api.client.get("/v1/users/1/balance")
    assert response.json() == {
        "user_id": 1,
        "available": "10.00",
        "reserved": "0.00",
        "total": "10.00",
        "currency": "RUB",
    }
    missing = api.client.get("/v1/users/2/balance")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(PROBLEM)


def test_withdrawal_and_its_refusals(api: Api) -> None:
    api.post("/v1/deposits", {"user_id": 1, "amount": "10"})
    response = api.post("/v1/withdrawals", {"user_id": 1, "amount": "4"})
    assert response.status_code == 201
    assert response.json()["balance"]["available"] == "6.00"
    api.refused(409, "/v1/withdrawals", {"user_id": 1, "amount": "6.01"}, "amount")
    api.refused(404, "/v1/withdrawals", {"user_id": 2, "amount": "1"})


def test_transfer_and_its_refusals(api: Api) -> None:
    api.post("/v1/deposits", {"user_id": 1, "amount": "10"})
    response = api.post("/v1/transfers", {"from_user_id": 1, "to_user_id": 2, "amount": "3"})
    assert response.status_code == 201
    body = response.json()
    assert body["from_balance"]["available"] == "7.00"
    assert body["to_balance"]["available"] == "3.00"
    api.refused(409, "/v1/transfers", {"from_user_id": 1, "to_user_id": 2, "amount": "8"})
    api.refused(404, "/v1/transfers", {"from_user_id": 9, "to_user_id": 2, "amount": "1"})
    api.refused(
        422, "/v1/transfers", {"from_user_id": 1, "to_user_id": 1, "amount": "1"}, "to_user_id"
    )


def test_reservation_lifecycle(api: Api) -> None:
    api.post("/v1/deposits", {"user_id": 1, "amount": "100"})
    order = {"user_id": 1, "service_id": 5, "order_id": 77, "amount": "30"}
    created = api.post("/v1/reservations", order)
    assert created.status_code == 201
    assert created.json()["status"] == "reserved"
    assert created.json()["balance"] == {"user_id": 1, "available": "70.00", "reserved": "30.00"}
    repeat = api.post("/v1/reservations", order)
    assert repeat.status_code == 200
    assert repeat.json()["order_id"] == 77
    api.refused(409, "/v1/reservations", {**order, "amount": "31"}, "order_id")
    api.refused(409, "/v1/reservations", {**order, "order_id": 78, "amount": "70.01"}, "amount")
    api.refused(404, "/v1/reservations", {**order, "user_id": 2, "order_id": 79})
    assert api.client.get("/v1/reservations/77").json()["status"] == "reserved"
    assert api.client.get("/v1/reservations/78").status_code == 404

    close = {"user_id": 1, "service_id": 5}
    api.refused(404, "/v1/reservations/78/recognize", {**close, "amount": "1"})
    api.refused(409, "/v1/reservations/77/recognize", {**close, "user_id": 2, "amount": "1"})
    api.refused(409, "/v1/reservations/77/recognize", {**close, "amount": "30.01"}, "amount")
    recognized = api.post("/v1/reservations/77/recognize", {**close, "amount": "20"})
    assert recognized.status_code == 200
    body = recognized.json()
    assert (body["status"], body["recognized_amount"]) == ("recognized", "20.00")
    assert body["balance"] == {"user_id": 1, "available": "80.00", "reserved": "0.00"}
    again = api.post("/v1/reservations/77/recognize", {**close, "amount": "20"})
    assert again.status_code == 200
    assert again.json() == body
    api.refused(409, "/v1/reservations/77/cancel", close)

    api.post("/v1/reservations", {**order, "order_id": 80, "amount": "5"})
    cancelled = api.post("/v1/reservations/80/cancel", close)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert api.post("/v1/reservations/80/cancel", close).json() == cancelled.json()
    api.refused(409, "/v1/reservations/80/recognize", {**close, "amount": "5"})
    assert api.client.get("/v1/users/1/balance").json()["available"] == "80.00"


def test_idempotent_replay_is_byte_identical(api: Api) -> None:
    body = {"user_id": 1, "amount": "10"}
    first = api.post("/v1/deposits", body, key="k-1")
    second = api.post("/v1/deposits", body, key="k-1")
    assert (second.status_code, second.content) == (first.status_code, first.content)
    assert api.client.get("/v1/users/1/balance").json()["available"] == "10.00"
    api.refused(422, "/v1/deposits", {"user_id": 1, "amount": "11"}, "Idempotency-Key", key="k-1")
    api.refused(422, "/v1/deposits", body, "Idempotency-Key", key="")
    api.refused(422, "/v1/deposits", body, "Idempotency-Key", key="x" * 256)
    api.refused(422, "/v1/deposits", body, "Idempotency-Key", key="bad\tkey")


def test_reservation_replay_under_a_key_keeps_status_201(api: Api) -> None:
    api.post("/v1/deposits", {"user_id": 1, "amount": "10"})
    order = {"user_id": 1, "service_id": 1, "order_id": 1, "amount": "1"}
    first = api.post("/v1/reservations", order, key="r-1")
    replay = api.post("/v1/reservations", order, key="r-1")
    assert first.status_code == replay.status_code == 201
    assert first.content == replay.content


@pytest.mark.parametrize(
    ("amount", "field"),
    [
        (0, "amount"),
        ("0", "amount"),
        (-5, "amount"),
        ("-0.01", "amount"),
        (0.001, "amount"),
        ("0.001", "amount"),
        ("150.2500000000000001", "amount"),
        ("abc", "amount"),
        (1e30, "amount"),
        ("1e30", "amount"),
        ("NaN", "amount"),
        ("Infinity", "amount"),
        (None, "amount"),
        (True, "amount"),
        ([1], "amount"),
        ("10000000000000.01", "amount"),
    ],
)
def test_bad_amounts_are_refused_with_the_field_named(api: Api, amount: Any, field: str) -> None:
    api.post("/v1/deposits", {"user_id": 1, "amount": "1"})
    for path, extra in [
        ("/v1/deposits", {"user_id": 1}),
        ("/v1/withdrawals", {"user_id": 1}),
        ("/v1/transfers", {"from_user_id": 1, "to_user_id": 2}),
        ("/v1/reservations", {"user_id": 1, "service_id": 1, "order_id": 1}),
    ]:
        problem = api.refused(422, path, {**extra, "amount": amount}, field)
        # One shape however the amount was wrong, as text or as a number.
        assert problem["type"] == "/problems/invalid-amount", problem
        assert problem["errors"] == [{"field": "amount", "message": AMOUNT_RULE}], problem


@pytest.mark.parametrize(
    ("path", "raw", "field", "message"),
    [
        (
            "/v1/deposits",
            b'{"user_id": 1, "amount": "1", "amount": "1000"}',
            "amount",
            "is given more than once",
        ),
        (
            "/v1/reservations/7/cancel",
            b'{"user_id": 1, "service_id": 1, "amount": "1"}',
            "amount",
            "is not a known field",
        ),
        ("/v1/deposits", b'{"user_id": 1}', "amount", "is required"),
    ],
)
def test_an_amount_named_but_not_written_wrong_is_a_validation_failure(
    api: Api, path: str, raw: bytes, field: str, message: str
) -> None:
    """Only an amount written wrong is invalid-amount: "must be a positive number" would
    send the caller looking at amounts that are fine (both of a repeated key were)."""
    api.post("/v1/deposits", {"user_id": 1, "amount": "1"})
    problem = api.refused(422, path, None, field, raw=raw)
    assert problem["type"] == "/problems/validation-failed", problem
    assert problem["errors"] == [{"field": field, "message": message}]


@pytest.mark.parametrize(
    ("operation", "field"),
    [
        ({"op": "deposit", "user_id": 1, "amount": "0.001"}, "operations[0].amount"),
        ({"op": "deposit", "user_id": 1, "amount": "0.00"}, "operations[0].amount"),
        ({"op": "deposit", "user_id": 1, "amount": "abc"}, "operations[0].amount"),
    ],
)
def test_a_batch_operation_with_a_bad_amount_is_invalid_amount(
    api: Api, operation: dict[str, Any], field: str
) -> None:
    problem = api.refused(422, "/v1/batches", {"operations": [operation]}, field)
    assert problem["type"] == "/problems/invalid-amount", problem
    assert problem["errors"] == [{"field": field, "message": AMOUNT_RULE}], problem


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "1"}, "user_id"),
        ({"user_id": 1}, "amount"),
        ({"user_id": "1", "amount": "1"}, "user_id"),
        ({"user_id": 0, "amount": "1"}, "user_id"),
        ({"user_id": -1, "amount": "1"}, "user_id"),
        ({"user_id": 2**63, "amount": "1"}, "user_id"),
        ({"user_id": 1.5, "amount": "1"}, "user_id"),
        ({"user_id": None, "amount": "1"}, "user_id"),
        ({"user_id": 1, "amount": "1", "extra": 1}, "extra"),
        ({"user_id": 1, "amount": "1", "description": "a\x00b"}, "description"),
        ({"user_id": 1, "amount": "1", "description": "x" * 501}, "description"),
        ([], "body"),
        ("text", "body"),
    ],
)
def test_bad_fields_are_refused_with_the_field_named(api: Api, body: Any, field: str) -> None:
    api.refused(422, "/v1/deposits", body, field)


@pytest.mark.parametrize(
    "number", [b"1.0000000000000000000000000001", b"150.2500000000000001", b"1e400", b"-0"]
)
def test_json_numbers_are_read_exactly(api: Api, number: bytes) -> None:
    api.refused(
        422, "/v1/deposits", None, "amount", raw=b'{"user_id": 1, "amount": ' + number + b"}"
    )


def test_unreadable_and_oversized_bodies(api: Api) -> None:
    api.refused(400, "/v1/deposits", None, raw=b"{not json")
    api.refused(400, "/v1/deposits", None, raw=b"")
    too_big = api.refused(
        413,
        "/v1/deposits",
        None,
        raw=b'{"user_id": 1, "amount": "1", "description": "' + b"x" * 1_000_000 + b'"}',
    )
    assert "64 KiB" in too_big["detail"], too_big


def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    missing = api.client.get("/v1/nothing")
    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)
    wrong = api.client.get("/v1/deposits")
    assert (wrong.status_code, wrong.headers["content-type"]) == (405, PROBLEM)
    bad_id = api.client.get("/v1/users/0/balance")
    assert bad_id.status_code in (400, 422)
    assert bad_id.headers["content-type"] == PROBLEM


def test_openapi_and_swagger_ui(api: Api) -> None:
    spec = api.client.get("/schema/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    for path in [
        "/v1/deposits",
        "/v1/withdrawals",
        "/v1/transfers",
        "/v1/reservations",
        "/v1/reservations/{order_id}/recognize",
        "/v1/reservations/{order_id}/cancel",
        "/v1/users/{user_id}/balance",
    ]:
        assert path in spec["paths"], path
    deposit_doc = spec["paths"]["/v1/deposits"]["post"]
    assert "201" in deposit_doc["responses"]
    assert "requestBody" in deposit_doc
    docs = api.client.get("/docs", follow_redirects=True)
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_statement_over_http(api: Api) -> None:
    for amount in ["1", "2", "3"]:
        api.post("/v1/deposits", {"user_id": 1, "amount": amount})
    first = api.client.get("/v1/users/1/transactions", params={"limit": 2, "sort": "amount"})
    assert first.status_code == 200
    body = first.json()
    assert [i["amount"] for i in body["items"]] == ["3.00", "2.00"]
    assert body["items"][0]["description"] == "Deposit"
    rest = api.client.get("/v1/users/1/transactions", params={"cursor": body["next_cursor"]})
    assert [i["amount"] for i in rest.json()["items"]] == ["1.00"]
    assert rest.json()["next_cursor"] is None
    paged = api.client.get("/v1/users/1/transactions", params={"page": 2, "limit": 2})
    assert paged.json()["total"] == 3
    kinds = api.client.get("/v1/users/1/transactions", params={"kind": "withdrawal,cancel"})
    assert kinds.json()["items"] == []
    as_of = api.client.get("/v1/users/1/balance", params={"as_of": "2000-01-01T00:00:00Z"})
    assert as_of.json()["available"] == "0.00"


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"limit": 0}, 422, "limit"),
        ({"limit": 501}, 422, "limit"),
        ({"limit": "x"}, 422, "limit"),
        ({"page": 0}, 422, "page"),
        ({"page": "null"}, 422, "page"),
        ({"page": "1e3"}, 422, "page"),
        ({"page": 10**9 + 1}, 422, "page"),
        ({"sort": "size"}, 422, "sort"),
        ({"sort": "null"}, 422, "sort"),
        ({"sort": ""}, 422, "sort"),
        ({"order": ""}, 422, "order"),
        ({"page": ""}, 422, "page"),
        ({"order": "up"}, 422, "order"),
        ({"order": "null"}, 422, "order"),
        ({"kind": "bonus"}, 422, "kind"),
        ({"cursor": "not-a-cursor"}, 422, "cursor"),
        ({"cursor": "eyJhIjpbMSwxXX0"}, 422, "cursor"),
        ({"from": "2022-02-01T00:00:00Z", "to": "2022-01-01T00:00:00Z"}, 422, "from"),
        ({"from": "2022-02-01T00:00:00"}, 422, "from"),
        ({"from": "yesterday"}, 422, "from"),
    ],
)
def test_bad_statement_queries(api: Api, params: dict[str, Any], status: int, field: str) -> None:
    api.post("/v1/deposits", {"user_id": 1, "amount": "1"})
    response = api.client.get("/v1/users/1/transactions", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert field in [e["field"] for e in response.json()["errors"]], response.json()


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/users/1/transactions", {"sortt": "amount"}, "sortt"),
        ("/v1/users/1/transactions", {"sort": "amount", "Order": "asc"}, "Order"),
        ("/v1/users/1/transactions", {"metadata": "order=1"}, "metadata"),
        ("/v1/users/1/balance", {"asof": "2022-01-01T00:00:00Z"}, "asof"),
        ("/v1/users/1/balance", {"as_of": "2022-01-01T00:00:00Z", "x": ""}, "x"),
        ("/v1/events", {"after": 0, "userid": 1}, "userid"),
        ("/v1/reservations/3", {"user_id": 1}, "user_id"),
        ("/v1/reports/revenue.csv", {"from": "2022-01-01", "until": "2022-02-01"}, "until"),
    ],
)
def test_a_query_parameter_the_route_does_not_take_is_refused(
    api: Api, path: str, params: dict[str, Any], field: str
) -> None:
    """As a body's unknown field is: a misspelt `sort` would list by date without a word."""
    api.post("/v1/deposits", {"user_id": 1, "amount": "1"})
    response = api.client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert "is not a parameter of this route" in response.json()["detail"]


@pytest.mark.parametrize("query", ["=1", "="])
def test_a_query_parameter_without_a_name_is_refused_in_words(api: Api, query: str) -> None:
    """Named by its empty name, as any unknown parameter is, with words that say so
    (not ": is not a parameter")."""
    api.post("/v1/deposits", {"user_id": 1, "amount": "1"})
    response = api.client.get(f"/v1/users/1/transactions?{query}")
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["detail"].startswith("a query parameter needs a name; this route takes cursor")
    assert [e["field"] for e in problem["errors"]] == [""]
    assert problem["errors"][0]["message"] == problem["detail"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("sort=amount&sort=date", "sort"), ("limit=2&limit=3", "limit"), ("from=x&to=y&to=z", "to")],
)
def test_a_query_parameter_given_twice_is_refused(api: Api, query: str, field: str) -> None:
    """As a body's key given twice is: which one would count is anyone's guess."""
    api.post("/v1/deposits", {"user_id": 1, "amount": "1"})
    response = api.client.get(f"/v1/users/1/transactions?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"field": field, "message": "is given more than once"}]


def test_a_write_with_a_query_parameter_is_refused_and_writes_nothing(api: Api) -> None:
    response = api.client.post(
        "/v1/deposits?amount=1000",
        content=b'{"user_id": 1, "amount": "1"}',
        headers={"Content-Type": "application/json", "Idempotency-Key": "k-1"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "amount"
    assert "which takes none" in response.json()["errors"][0]["message"]
    assert api.client.get("/v1/users/1/balance").status_code == 404
    # The key was not taken: the same request without the query is applied.
    assert api.post("/v1/deposits", {"user_id": 1, "amount": "1"}, key="k-1").status_code == 201


def test_the_parameters_a_route_takes_still_pass(api: Api) -> None:
    api.post("/v1/deposits", {"user_id": 1, "amount": "1"})
    statement = api.client.get(
        "/v1/users/1/transactions",
        params={
            "sort": "amount",
            "order": "asc",
            "limit": 5,
            "metadata.order": "7",
            "kind": "deposit",
        },
    )
    assert statement.status_code == 200, statement.text
    kinds = api.client.get("/v1/users/1/transactions?kind=deposit&kind=transfer_out")
    assert kinds.status_code == 200, kinds.text  # a list: repeated, as documented
    assert (
        api.client.get("/v1/users/1/balance", params={"as_of": "2030-01-01T00:00:00Z"}).status_code
        == 200
    )
    # OPTIONS (a browser's preflight carries the request's query) answers as before.
    preflight = api.client.options("/v1/users/1/transactions?sort=amount")
    assert preflight.status_code == 204, preflight.text
    assert "GET" in preflight.headers["allow"]
    # Probes and scrapes are not API routes: a query on them is nobody's mistake to refuse.
    assert api.client.get("/health/live", params={"probe": 1}).status_code == 200
    assert api.client.get("/metrics", params={"name[]": "x"}).status_code == 200


def test_a_cursor_refuses_other_filters_and_unknown_users_are_404(api: Api) -> None:
    for _ in range(3):
        api.post("/v1/deposits", {"user_id": 1, "amount": "1"})
    cursor = api.client.get("/v1/users/1/transactions", params={"limit": 1}).json()["next_cursor"]
    others: list[dict[str, Any]] = [
        {"sort": "amount"},
        {"order": "asc"},
        {"kind": "deposit"},
        {"from": "2020-01-01T00:00:00Z"},
        {"page": 2},
    ]
    for other in others:
        response = api.client.get("/v1/users/1/transactions", params={"cursor": cursor, **other})
        assert response.status_code == 422, (other, response.text)
    same = api.client.get("/v1/users/1/transactions", params={"cursor": cursor, "order": "desc"})
    assert same.status_code == 200
    assert api.client.get("/v1/users/2/transactions").status_code == 404
    assert (
        api.client.get("/v1/users/2/balance", params={"as_of": "2022-01-01T00:00:00Z"}).status_code
        == 404
    )


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


@pytest.mark.parametrize(
    "expires_at",
    [
        "garbage",
        "2030-01-01T00:00:00",  # no zone
        "2030-01-01",
        "2001-01-01T00:00:00Z",  # past
        "past",
        "91 days",
        12345,
        "",
    ],
)
def test_a_bad_expires_at_is_refused_and_writes_nothing(api: Api, expires_at: Any) -> None:
    api.post("/v1/deposits", {"user_id": 1, "amount": "10"})
    when = {"past": later(seconds=-1), "91 days": later(days=91)}.get(expires_at, expires_at)
    order = {"user_id": 1, "service_id": 2, "order_id": 3, "amount": "1", "expires_at": when}
    api.refused(422, "/v1/reservations", order, "expires_at")


def test_expires_at_is_echoed_and_a_read_after_it_expires_the_hold(api: Api) -> None:
    api.post("/v1/deposits", {"user_id": 1, "amount": "10"})
    order = {"user_id": 1, "service_id": 2, "order_id": 3, "amount": "4"}
    plain = api.post("/v1/reservations", order).json()
    assert plain["expires_at"] is None
    at = later(days=90, seconds=-5)
    expiring = api.post("/v1/reservations", order | {"order_id": 4, "expires_at": at}).json()
    assert datetime.fromisoformat(expiring["expires_at"]) == datetime.fromisoformat(at)
    store = api.view._store
    store.reservations[4].expires_at = datetime.now(UTC) - timedelta(seconds=1)
    read = api.client.get("/v1/reservations/4").json()
    assert read["status"] == "expired"
    assert read["balance"] == {"user_id": 1, "available": "6.00", "reserved": "4.00"}
    recognized = api.post(
        "/v1/reservations/4/recognize", {"user_id": 1, "service_id": 2, "amount": "4"}
    )
    assert recognized.status_code == 409
    assert recognized.json()["type"] == "/problems/reservation-expired"
    assert [e["field"] for e in recognized.json()["errors"]] == ["order_id"]
    kinds = api.client.get("/v1/users/1/transactions", params={"kind": "expire"}).json()["items"]
    assert [item["description"] for item in kinds] == ["Reservation for order 4 expired"] * 2


def test_a_batch_reserves_with_an_expiry_too(api: Api) -> None:
    at = later(hours=2)
    ops = [
        {"op": "deposit", "user_id": 1, "amount": "10"},
        {"op": "reserve", "user_id": 1, "service_id": 2, "order_id": 5, "amount": "3"}
        | {"expires_at": at},
        {"op": "reserve", "user_id": 1, "service_id": 2, "order_id": 6, "amount": "3"}
        | {"expires_at": later(days=91)},
    ]
    results = api.post("/v1/batches", {"operations": ops}).json()["results"]
    assert [r["status"] for r in results] == [201, 201, 422]
    assert datetime.fromisoformat(results[1]["body"]["expires_at"]) == datetime.fromisoformat(at)
    assert results[2]["body"]["errors"][0]["field"] == "expires_at"


class Ahead:
    """A store's clock running `by` ahead of this process's own clock."""

    def __init__(self, by: timedelta) -> None:
        self.by = by

    def now(self) -> datetime:
        return datetime.now(UTC) + self.by


def test_a_read_decides_expiry_on_the_stores_clock_not_the_app_servers(api: Api) -> None:
    """The store's clock has passed expires_at; this server's clock has not. The store
    decides, as it does for writes: the read expires the hold."""
    store = api.view._store
    store.clock = Ahead(timedelta(hours=1))
    api.post("/v1/deposits", {"user_id": 1, "amount": "10"})
    at = (datetime.now(UTC) + timedelta(hours=1, minutes=30)).isoformat()
    order = {"user_id": 1, "service_id": 2, "order_id": 3, "amount": "4", "expires_at": at}
    assert api.post("/v1/reservations", order).status_code == 201
    store.clock = Ahead(timedelta(hours=2))  # the store's clock passes expires_at
    read = api.client.get("/v1/reservations/3").json()
    assert read["status"] == "expired"
    assert read["balance"] == {"user_id": 1, "available": "10.00", "reserved": "0.00"}
    store.clock = Ahead(timedelta(0))  # and back: the app's clock has not reached it
    assert api.client.get("/v1/reservations/3").json()["status"] == "expired"


@pytest.mark.parametrize(
    "number", [b"1E+1000000", b"-1E+1000000", b"1e999999999999", b"1E-1000000"]
)
def test_an_amount_with_a_huge_exponent_is_a_422_on_every_money_route(
    api: Api, number: bytes
) -> None:
    """1E+1000000 overflowed the decimal context in the domain: a 500."""
    api.post("/v1/deposits", {"user_id": 1, "amount": "10"})
    before = api.snapshot()
    for path, body in [
        ("/v1/deposits", b'{"user_id": 1, "amount": %s}'),
        ("/v1/withdrawals", b'{"user_id": 1, "amount": %s}'),
        ("/v1/transfers", b'{"from_user_id": 1, "to_user_id": 2, "amount": %s}'),
        ("/v1/reservations", b'{"user_id": 1, "service_id": 1, "order_id": 9, "amount": %s}'),
        ("/v1/batches", b'{"operations": [{"op": "deposit", "user_id": 1, "amount": %s}]}'),
    ]:
        answer = api.post(path, None, raw=body % number)
        assert answer.status_code == 422, (path, answer.text)
        fields = [e["field"] for e in answer.json()["errors"]]
        assert fields[0].endswith("amount"), (path, fields)
    assert api.snapshot() == before


def test_a_missing_or_bad_query_parameter_is_a_422_naming_it_in_plain_words(api: Api) -> None:
    missing = api.client.get("/v1/reports/revenue.csv?from=2022-01-01")
    assert missing.status_code == 422, missing.text
    assert [e["field"] for e in missing.json()["errors"]] == ["to"]
    zero = api.client.get("/v1/events?limit=0")
    assert zero.status_code == 422, zero.text
    assert [e["field"] for e in zero.json()["errors"]] == ["limit"]
    assert "?" not in zero.json()["detail"], "the detail names the field, not the URL"
    assert zero.json()["errors"][0]["message"] == "must be at least 1"
    text = api.client.get("/v1/events?after=abc&limit=5000")
    assert text.status_code == 422, text.text
    assert text.json()["errors"] == [
        {"field": "after", "message": "must be a whole number"},
        {"field": "limit", "message": "must be at most 1000"},
    ]


def test_a_cursor_of_one_users_statement_is_refused_on_anothers(api: Api) -> None:
    for user in (1, 1, 2, 2):
        api.post("/v1/deposits", {"user_id": user, "amount": "1"})
    cursor = api.client.get("/v1/users/1/transactions", params={"limit": 1}).json()["next_cursor"]
    other = api.client.get("/v1/users/2/transactions", params={"cursor": cursor})
    assert other.status_code == 422, other.text
    assert [e["field"] for e in other.json()["errors"]] == ["cursor"]


def test_a_path_number_written_as_text_is_a_422_naming_the_parameter(api: Api) -> None:
    for method, path, body, field in (
        ("GET", "/v1/users/abc/balance", None, "user_id"),
        ("GET", "/v1/users/1.5/transactions", None, "user_id"),
        ("POST", "/v1/reservations/x1/cancel", {"user_id": 1, "service_id": 1}, "order_id"),
        ("PUT", "/v1/users/abc/limits", {"credit_limit": "0", "frozen": False}, "user_id"),
    ):
        answered = api.client.request(method, path, json=body)
        assert answered.status_code == 422, (path, answered.text)
        assert answered.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in answered.json()["errors"]] == [field], answered.text
    # Not a route at all, or a route without that method: still 404 and 405, naming
    # the path or the method.
    for path in ("/v1/users/abc/nothing", "/v1/usersabc/balance", "/v1/" + "x" * 5000):
        missing = api.client.get(path)
        assert missing.status_code == 404
        said = f"no route {path[:200]}{'...' if len(path) > 200 else ''};"
        assert missing.json()["errors"] == [
            {"field": "path", "message": f"{said} the API's routes are in /docs"}
        ]
    assert api.client.delete("/v1/users/abc/balance").status_code in (404, 405)
    wrong = api.client.delete("/v1/users/1/limits")
    assert wrong.status_code == 405
    assert wrong.json()["errors"] == [
        {
            "field": "method",
            "message": "DELETE is not a method of /v1/users/1/limits, which takes GET, PUT",
        }
    ]


def test_a_legs_amount_and_a_batch_operations_amount_are_refused_in_the_same_shape(
    api: Api,
) -> None:
    for amount in ("0.001", 0.001, "abc", "1e30", 0):
        body = {"legs": [{"user_id": 1, "amount": amount}, {"user_id": 2, "amount": "1"}]}
        problem = api.refused(422, "/v1/movements", body, "legs[0].amount")
        assert problem["type"] == "/problems/invalid-amount", problem
        assert problem["errors"] == [{"field": "legs[0].amount", "message": LEG_AMOUNT_RULE}]
        batch = {"operations": [{"op": "deposit", "user_id": 1, "amount": amount}]}
        problem = api.refused(422, "/v1/batches", batch, "operations[0].amount")
        assert problem["type"] == "/problems/invalid-amount", problem
        assert problem["errors"] == [{"field": "operations[0].amount", "message": AMOUNT_RULE}]


def test_refusals_read_as_sentences(api: Api) -> None:
    """msgspec's words (types in backticks, regexes) become plain sentences."""
    for body, field, message in (
        ({"user_id": "1", "amount": "1"}, "user_id", "must be a whole number, not a string"),
        (
            {"user_id": 1, "amount": "1", "description": "a\x01b"},
            "description",
            "must not contain control characters",
        ),
        (
            {"user_id": 1, "amount": "1", "description": "x" * 501},
            "description",
            "must be at most 500 characters long",
        ),
    ):
        problem = api.refused(422, "/v1/deposits", body, field)
        assert problem["errors"] == [{"field": field, "message": message}], problem
    deposit = {"op": "deposit", "user_id": 1, "amount": "1"}
    reserve = {"user_id": 1, "service_id": 1, "order_id": 1, "amount": "1"}
    sent: dict[str, Any]
    for path, sent, field, message in (
        ("/v1/batches", {"operations": []}, "operations", "must have at least 1 item"),
        (
            "/v1/batches",
            {"operations": [deposit] * 1001},
            "operations",
            "must have at most 1000 items",
        ),
        (
            "/v1/movements",
            {"legs": [{"user_id": 1, "amount": "1"}]},
            "legs",
            "must have at least 2 items",
        ),
        (
            "/v1/batches",
            {"operations": [{"op": "steal", "user_id": 1}]},
            "operations[0].op",
            "must be one of deposit, withdrawal, transfer, reserve, recognize, cancel, movement,"
            " not 'steal'",
        ),
        ("/v1/batches", {"operations": [{"op": 1}]}, "operations[0].op", "must be a string"),
        ("/v1/services/1", {"name": ""}, "name", "must be at least 1 character long"),
        (
            "/v1/reservations",
            reserve | {"expires_at": "2026-13-05T00:00:00Z"},
            "expires_at",
            "must be an RFC 3339 time, e.g. 2022-11-01T00:00:00Z",
        ),
        (
            "/v1/reservations",
            reserve | {"expires_at": "2030-01-05T00:00:00"},
            "expires_at",
            "needs a time zone (RFC 3339), e.g. 2022-11-01T00:00:00Z",
        ),
    ):
        send = api.client.put if path.startswith("/v1/services") else api.client.post
        answered = send(path, json=sent)
        assert answered.status_code == 422, answered.text
        problem = answered.json()
        assert problem["errors"] == [{"field": field, "message": message}], problem
    for raw, detail in (
        (b"NaN", "the body is not JSON: unexpected text at byte 0 (NaN and Infinity are not JSON)"),
        (
            b'{"user_id": 1, "amount": -Infinity}',
            "the body is not JSON: unexpected text at byte 26 (NaN and Infinity are not JSON)",
        ),
        # What msgspec found wrong, in its words; the hint only where it applies.
        (b"nope", "the body is not JSON: unexpected text at byte 4"),
        (b'{"user_id": 1,}', "the body is not JSON: trailing comma in object at byte 14"),
        (b"{user_id: 1}", "the body is not JSON: object keys must be strings at byte 1"),
        (
            b'{"user_id": 1, "amount": "5"} {}',
            "the body is not JSON: trailing characters at byte 31",
        ),
        (b"{", "the body is not whole JSON: it ends too early (or is empty)"),
        (b'{"user_id": 1, "amount": "\xff"}', "the body is not JSON: it is not UTF-8"),
        # msgspec calls a string that ends in a high half "truncated": it is not.
        (
            b'{"user_id": 1, "description": "\\ud800"}',
            "the body is not JSON: a string has half of a UTF-16 surrogate pair (\\ud800)"
            " at byte 31",
        ),
        (
            b'{"description": "\\ud83d\\ude00 \\udc00", "user_id": 1}',
            "the body is not JSON: a string has half of a UTF-16 surrogate pair (\\udc00)"
            " at byte 30",
        ),
        (
            b'{"description": "\\ud800\\u0041"}',
            "the body is not JSON: a string has half of a UTF-16 surrogate pair (\\ud800)"
            " at byte 17",
        ),
        # A backslash, then the text `ud800`: whole JSON, cut short after it.
        (
            b'{"description": "\\\\ud800',
            "the body is not whole JSON: it ends too early (or is empty)",
        ),
        (b"", "a JSON body is required"),
    ):
        assert api.refused(400, "/v1/deposits", None, raw=raw)["detail"] == detail


def test_a_refusal_about_a_user_or_an_order_names_the_field(api: Api) -> None:
    """404s, account-frozen and a closed reservation name the field the refused id came in."""
    api.post("/v1/deposits", {"user_id": 1, "amount": "10"})
    api.post("/v1/deposits", {"user_id": 2, "amount": "10"})
    reserve = {"user_id": 2, "service_id": 1, "order_id": 78, "amount": "1"}
    assert api.post("/v1/reservations", reserve).status_code == 201
    assert api.post("/v1/reservations/78/cancel", {"user_id": 2, "service_id": 1}).is_success
    assert api.client.put(
        "/v1/users/1/limits", json={"credit_limit": "0", "frozen": True}
    ).is_success
    for path, body, status, field in (
        ("/v1/withdrawals", {"user_id": 1, "amount": "1"}, 409, "user_id"),
        ("/v1/transfers", {"from_user_id": 1, "to_user_id": 2, "amount": "1"}, 409, "from_user_id"),
        ("/v1/transfers", {"from_user_id": 9, "to_user_id": 2, "amount": "1"}, 404, "from_user_id"),
        ("/v1/withdrawals", {"user_id": 9, "amount": "1"}, 404, "user_id"),
        (
            "/v1/movements",
            {"legs": [{"user_id": 2, "amount": "1"}, {"user_id": 1, "amount": "-1"}]},
            409,
            "legs[1].user_id",
        ),
        ("/v1/reservations/77/cancel", {"user_id": 2, "service_id": 1}, 404, "order_id"),
        (
            "/v1/reservations/78/recognize",
            {"user_id": 2, "service_id": 1, "amount": "1"},
            409,
            "order_id",
        ),
        ("/v1/reservations/78/cancel", {"user_id": 2, "service_id": 9}, 409, "service_id"),
        (
            "/v1/batches",
            {"operations": [{"op": "transfer", "from_user_id": 1, "to_user_id": 2, "amount": "1"}]},
            200,
            None,
        ),
    ):
        if status == 200:
            answered = api.post(path, body).json()["results"][0]["body"]
            assert answered["errors"][0]["field"] == "from_user_id", answered
            continue
        problem = api.refused(status, path, body, field)
        assert [e["field"] for e in problem["errors"]] == [field], problem
    missing = api.client.get("/v1/users/9/balance").json()
    assert [e["field"] for e in missing["errors"]] == ["user_id"], missing


def test_a_reservation_read_back_shows_the_metadata_it_was_made_with(api: Api) -> None:
    api.post("/v1/deposits", {"user_id": 1, "amount": "10"})
    body = {"user_id": 1, "service_id": 5, "order_id": 31, "amount": "1", "metadata": {"cart": "9"}}
    assert api.post("/v1/reservations", body).status_code == 201
    read = api.client.get("/v1/reservations/31").json()
    assert read["metadata"] == {"cart": "9"}, read


@pytest.mark.parametrize("key", ["", "x" * 256, "bad\tkey", "bad\x7fkey", "ключ", "a\x00"])
def test_an_idempotency_key_is_1_to_255_printable_ascii_characters(key: str) -> None:
    with pytest.raises(RequestInvalid):
        idempotency_key(key)
    assert idempotency_key(" !~" + "x" * 252) == " !~" + "x" * 252


def test_a_stored_refusal_is_sent_as_stored_and_placed_in_an_atomic_batch() -> None:
    """A refusal replayed under a key is its stored bytes; inside an atomic batch it
    names its place as a fresh one does; bytes the service did not store as a problem
    (a runner with no HTTP in front) are sent as they are, never a 500."""
    fresh = refusal(InsufficientFunds(1, 100, 500))
    stored = stored_refusal(InsufficientFunds(1, 100, 500))
    assert (stored.status, stored.body) == (fresh.status, fresh.body)
    assert refusal(RefusedBefore(stored)).body == stored.body
    placed = refusal(OperationRefused(2, RefusedBefore(stored)))
    assert placed.body == refusal(OperationRefused(2, InsufficientFunds(1, 100, 500))).body
    undone = stored_refusal(RefusedWithBatch(1))
    assert refusal(OperationRefused(0, RefusedBefore(undone))).body == (
        refusal(OperationRefused(0, RefusedWithBatch(1))).body
    )
    plain = StoredResponse(409, b'{"type": "InsufficientFunds"}')
    assert refusal(OperationRefused(0, RefusedBefore(plain))).body == plain.body
