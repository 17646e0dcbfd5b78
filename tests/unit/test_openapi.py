"""The published schema says exactly what the service accepts and answers: each test
here pins a gap schemathesis found (tests/e2e/test_fuzz.py runs it for real)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidAmount
from domain.money import Money
from entrypoints.http.app import create_litestar
from entrypoints.http.decoding import AMOUNT_TEXT, RequestInvalid, check_body_text
from entrypoints.http.schemas import MAX_ID


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_litestar(lambda: None).openapi_schema.to_schema()  # type: ignore[arg-type,return-value]


def parameter(document: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    return next(p for p in document["paths"][path][method]["parameters"] if p["name"] == name)


def test_id_bounds_are_exact_integers(document: dict[str, Any]) -> None:
    schema = parameter(document, "/v1/users/{user_id}/balance", "get", "user_id")["schema"]
    assert schema["maximum"] == MAX_ID
    assert type(schema["maximum"]) is int
    assert schema["minimum"] == 1
    assert type(schema["minimum"]) is int
    body = document["components"]["schemas"]["DepositRequest"]
    assert body["properties"]["user_id"]["maximum"] == MAX_ID


def test_idempotency_key_is_described_fully(document: dict[str, Any]) -> None:
    schema = parameter(document, "/v1/deposits", "post", "Idempotency-Key")["schema"]
    assert (schema["minLength"], schema["maxLength"]) == (1, 255)
    assert re.fullmatch(schema["pattern"][1:-1], "order-42 ~!") is not None
    assert re.fullmatch(schema["pattern"][1:-1], "tab\there") is None


def test_times_and_dates_carry_their_format(document: dict[str, Any]) -> None:
    formats = {
        ("/v1/users/{user_id}/balance", "as_of"): "date-time",
        ("/v1/users/{user_id}/transactions", "from"): "date-time",
        ("/v1/users/{user_id}/transactions", "to"): "date-time",
        ("/v1/reports/revenue.csv", "from"): "date",
        ("/v1/reports/revenue.csv", "to"): "date",
    }
    for (path, name), expected in formats.items():
        assert parameter(document, path, "get", name)["schema"]["format"] == expected


def test_every_answer_is_documented(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert {"200", "201"} <= paths["/v1/reservations"]["post"]["responses"].keys()
    assert "404" in paths["/v1/services/{service_id}"]["put"]["responses"]
    csv = paths["/v1/reports/revenue/{period}"]["get"]["responses"]["200"]["content"]
    assert list(csv) == ["text/csv"]
    ready = paths["/health/ready"]["get"]["responses"]
    assert ready["200"]["content"]["application/json"]["schema"]["$ref"].endswith("HealthStatus")
    assert "application/problem+json" in ready["503"]["content"]
    for path, item in paths.items():
        for method in ("post", "put"):
            if method in item and "requestBody" in item[method]:
                assert {"413", "415", "422"} <= item[method]["responses"].keys(), path


def test_request_bodies_refuse_unknown_fields(document: dict[str, Any]) -> None:
    bodies = [
        schema
        for name, schema in document["components"]["schemas"].items()
        if name.endswith("Request")
    ]
    assert len(bodies) == 8
    assert all(schema["additionalProperties"] is False for schema in bodies)


def test_amount_is_a_plain_decimal_string_or_a_number(document: dict[str, Any]) -> None:
    body = document["components"]["schemas"]["TransferRequest"]
    string, number = body["properties"]["amount"]["oneOf"]
    assert string == {"type": "string", "pattern": AMOUNT_TEXT, "examples": ["150.25"]}
    assert number["type"] == "number"
    assert number["multipleOf"] == 0.01


def accepted(text: str) -> bool:
    """What the service does with a string amount: the form check, then the domain."""
    try:
        check_body_text(f'{{"amount": "{text}"}}'.encode())
        Money.amount(Decimal(text))
    except (RequestInvalid, InvalidAmount):
        return False
    return True


@given(
    st.one_of(
        st.from_regex(r"\A[0-9]{1,15}(\.[0-9]{0,3})?\Z"),
        st.from_regex(r"\A[-+ 0-9._e]{1,8}\Z"),
        st.decimals(min_value=0, max_value=10**13 + 1, places=2).map(str),
    )
)
def test_the_published_amount_pattern_is_exactly_what_is_accepted(text: str) -> None:
    assert (re.fullmatch(AMOUNT_TEXT[1:-1], text) is not None) == accepted(text)
