"""The published schema says exactly what the service accepts and answers: each test
here pins a gap schemathesis found (tests/e2e/test_fuzz.py runs it for real)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import jsonschema_rs
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient

from domain.errors import InvalidAmount
from domain.money import Money
from entrypoints.http.app import DOCS_ASSETS, create_litestar
from entrypoints.http.auth import Tokens
from entrypoints.http.decoding import AMOUNT_TEXT, RequestInvalid, check_body_text
from entrypoints.http.schemas import MAX_ID
from entrypoints.settings import ApiToken


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return served(create_litestar(lambda: None))  # type: ignore[arg-type,return-value]


@pytest.fixture(scope="module")
def secured() -> dict[str, Any]:
    tokens = Tokens.of([ApiToken("token-0123456789abcdef", frozenset({"read"}))])
    return served(create_litestar(lambda: None, tokens=tokens))  # type: ignore[arg-type,return-value]


def served(app: Litestar) -> dict[str, Any]:
    """The document as JSON, as /schema/openapi.json serves it."""
    return msgspec.json.decode(msgspec.json.encode(app.openapi_schema.to_schema()))  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation
    ]


def test_operations_have_verb_ids_and_plain_summaries(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids)) == 22
    assert all(
        re.fullmatch(r"(get|list|create|recognize|cancel|name|set)[A-Z][A-Za-z]*", i) for i in ids
    )
    assert {"createDeposit", "getUserBalance", "listUserTransactions"} <= set(ids)
    for method, path, operation in operations(document):
        summary = operation["summary"]
        assert " " in summary, (method, path, summary)
        assert summary[0].isupper(), summary


def test_every_schema_has_a_real_example_that_fits_it(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name, schema in schemas.items():
        (example,) = schema["examples"]
        root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
        assert jsonschema_rs.Draft202012Validator(root).is_valid(example), (name, example)
    amounts = [
        value
        for schema in schemas.values()
        for key, value in flatten(schema["examples"][0])
        if key in {"amount", "available", "reserved", "total", "balance_after"}
        and value is not None  # a problem's absent numbers
    ]
    assert len(amounts) > 20
    assert all(re.fullmatch(r"-?[0-9]+\.[0-9]{2}", amount) for amount in amounts), amounts
    problem = schemas["Problem"]["examples"][0]
    assert problem["status"] == 409
    assert problem["type"] == "/problems/insufficient-funds"


def flatten(value: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in flatten(v, k)]
    if isinstance(value, list):
        return [pair for v in value for pair in flatten(v, key)]
    return [(key, value)]


def examples_in(node: Any) -> list[Any]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in {"example", "examples"}]
        return found + [e for v in node.values() for e in examples_in(v)]
    if isinstance(node, list):
        return [e for v in node for e in examples_in(v)]
    return []


def test_no_example_is_made_up(document: dict[str, Any]) -> None:
    """Litestar invents random strings and 2009 timestamps unless told not to."""
    values = [value for example in examples_in(document) for _, value in flatten(example)]
    assert len(values) > 50
    for value in values:
        assert not re.fullmatch(r"[A-Za-z]{20}", str(value)), value
        assert not str(value).startswith("2009-"), value
        assert not (isinstance(value, int) and value > 10_000), value


def test_the_bearer_requirement_is_published_only_with_tokens(
    document: dict[str, Any], secured: dict[str, Any]
) -> None:
    assert "securitySchemes" not in document["components"]
    assert all("security" not in op for _, _, op in operations(document))
    assert all("401" not in op["responses"] for _, _, op in operations(document))
    assert secured["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    for _, path, operation in operations(secured):
        guarded = path.startswith("/v1")
        assert ("security" in operation) == guarded, path
        assert ("401" in operation["responses"]) == guarded, path


def test_swagger_ui_is_served_by_the_service_itself() -> None:
    with TestClient(create_litestar(lambda: None)) as client:  # type: ignore[arg-type,return-value]
        page = client.get("/docs", follow_redirects=True)
        assert page.status_code == 200
        sources = re.findall(r'(?:src|href)=["\']([^"\']+)', page.text)
        assert sources
        assert all(source.startswith(DOCS_ASSETS) for source in sources), sources
        for source in sources:
            asset = client.get(source)
            assert asset.status_code == 200, source
            assert len(asset.content) > 500, source


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


def test_what_the_engine_may_answer_is_documented_on_every_route(
    document: dict[str, Any],
) -> None:
    """503 (with Retry-After) on every /v1 operation; 409 on every one taking a key,
    and `Idempotent-Replayed` on what such a one may send again."""
    keyed = 0
    for method, path, operation in operations(document):
        if not path.startswith("/v1"):
            continue
        unavailable = operation["responses"]["503"]
        assert "Retry-After" in unavailable["headers"], (method, path)
        assert "application/problem+json" in unavailable["content"]
        names = [p["name"] for p in operation.get("parameters", [])]
        replayed = {
            status
            for status, response in operation["responses"].items()
            if "Idempotent-Replayed" in response.get("headers", {})
        }
        if "Idempotency-Key" in names:
            keyed += 1
            assert "still running" in operation["responses"]["409"]["description"], path
            # an answer or a rule's refusal may be sent again, and says so
            answers = {s for s in operation["responses"] if s in ("200", "201")}
            assert replayed == answers | {"404", "409", "422"} & operation["responses"].keys()
            assert answers, path
            assert "409" in replayed, path
        else:
            assert replayed == set(), path
    assert keyed == 8  # the seven movements and the batch


def test_request_bodies_refuse_unknown_fields(document: dict[str, Any]) -> None:
    bodies = [
        schema
        for name, schema in document["components"]["schemas"].items()
        if name.endswith(("Request", "Operation"))
    ]
    assert len(bodies) == 18
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


def test_the_report_periods_limits_are_published(document: dict[str, Any]) -> None:
    """A month report takes years 2000..9998 and months 1..12: the schema says so."""
    request = document["components"]["schemas"]["ReportRequest"]["properties"]
    assert (request["year"]["minimum"], request["year"]["maximum"]) == (2000, 9998)
    assert (request["month"]["minimum"], request["month"]["maximum"]) == (1, 12)
    (period,) = document["paths"]["/v1/reports/revenue/{period}"]["get"]["parameters"]
    pattern = re.compile(period["schema"]["pattern"])
    for text, allowed in [
        ("2022-11.csv", True),
        ("2000-01.csv", True),
        ("9998-12.csv", True),
        ("1999-12.csv", False),
        ("9999-01.csv", False),
        ("2022-13.csv", False),
        ("2022-00.csv", False),
    ]:
        assert bool(pattern.fullmatch(text)) is allowed, text


def test_each_refusal_shows_an_example_of_its_own_status(
    document: dict[str, Any], secured: dict[str, Any]
) -> None:
    """/docs showed one 409 body under 400, 404, 413, 415 and 422 alike."""
    seen = set()
    for served_document in (document, secured):
        for method, path, operation in operations(served_document):
            for status, response in operation["responses"].items():
                media = response.get("content", {}).get("application/problem+json")
                if media is None:
                    continue
                example = media["example"]
                assert example["status"] == int(status), (method, path, status, example)
                assert example["type"].startswith("/problems/"), example
                seen.add(status)
    assert seen >= {"400", "401", "403", "404", "409", "413", "415", "422", "503"}, seen


def test_every_path_parameter_has_an_example(document: dict[str, Any]) -> None:
    """So that "Try it out" in /docs runs as it opens."""
    for method, path, operation in operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert "example" in parameter, (method, path, parameter["name"])
