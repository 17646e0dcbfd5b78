"""Final touches to the generated OpenAPI document, so generators send what we accept.

Litestar writes numeric bounds as floats: `le=2**63-1` became 9.223372036854776e+18,
which is 2**63 and lets clients and fuzzers send ids one past the largest. It also
leaves request bodies open to unknown fields, which the strict decoder refuses. The
bearer requirement is published only when tokens are configured, so the document
says what this server asks for; every schema's example is a real one (examples.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi.spec import (
    Discriminator,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Parameter,
    Reference,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIType

from application.errors import RequestInProgress, StoreUnavailable
from domain.errors import BalanceLimit, InsufficientFunds, UserNotFound
from domain.money import MAX_AMOUNT_RUBLES, MAX_BALANCE_KOPECKS
from entrypoints.http.auth import SCHEME
from entrypoints.http.decoding import AMOUNT_TEXT, LIMIT_TEXT, SIGNED_AMOUNT_TEXT
from entrypoints.http.examples import EXAMPLES, example
from entrypoints.http.money import MONEY_ROUTES
from entrypoints.http.problems import (
    BODY_TOO_LARGE,
    PROBLEM_JSON,
    answer,
    bad_amounts,
    refusal,
)
from entrypoints.http.schemas import (
    MAX_ID,
    MAX_METADATA_KEY,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE,
    METADATA_KEY,
    NO_CONTROL,
    ProblemField,
)

AMOUNT_IN = Schema(
    one_of=[
        Schema(type=OpenAPIType.STRING, pattern=AMOUNT_TEXT, examples=["150.25"]),
        Schema(
            type=OpenAPIType.NUMBER,
            exclusive_minimum=0,
            maximum=MAX_AMOUNT_RUBLES,
            multiple_of=0.01,
            examples=[150.25],
        ),
    ],
    description=(
        "Decimal rubles, > 0 and at most 10000000000000.00, at most 2 decimals:"
        ' a string such as "150.25" (preferred) or a JSON number'
    ),
)


SIGNED_AMOUNT_IN = Schema(
    one_of=[
        Schema(type=OpenAPIType.STRING, pattern=SIGNED_AMOUNT_TEXT, examples=["-100.00"]),
        Schema(
            type=OpenAPIType.NUMBER,
            minimum=-MAX_AMOUNT_RUBLES,
            maximum=MAX_AMOUNT_RUBLES,
            multiple_of=0.01,
            examples=[-100.0],
        ),
    ],
    description=(
        "Signed decimal rubles, not zero, at most 2 decimals, at most 10000000000000.00 either"
        ' way: negative leaves the user, positive arrives ("-100.00" preferred, or a number)'
    ),
)


LIMIT_IN = Schema(
    one_of=[
        Schema(type=OpenAPIType.STRING, pattern=LIMIT_TEXT, examples=["100.00"]),
        Schema(
            type=OpenAPIType.NUMBER,
            minimum=0,
            maximum=MAX_AMOUNT_RUBLES,
            multiple_of=0.01,
            examples=[100.0],
        ),
    ],
    description=(
        "How far below zero the available balance may go: decimal rubles, 0 or more, at most"
        ' 2 decimals, at most 10000000000000.00 ("100.00" preferred, or a number)'
    ),
)


def finish(app: Litestar, secured: bool) -> OpenAPI:
    document = app.openapi_schema
    if secured:
        _require_tokens(document)
    else:
        document.components.security_schemes = None
    _close_bodies(document)
    _engine_refusals(document)
    _tag_operations(document)
    _refusal_examples(document)
    for path in (document.paths or {}).values():
        for operation in (path.get, path.post, path.put):
            for parameter in (operation.parameters or []) if operation else []:
                if isinstance(parameter, Parameter) and isinstance(parameter.schema, Schema):
                    _drop_null(parameter.schema)
    for schema in _schemas(document):
        _exact_integer_bounds(schema)
    for name, schema in (document.components.schemas or {}).items():
        if name in EXAMPLES:
            # Raw JSON: Litestar's rendering of the document drops None from dicts, and
            # a null an answer always carries (an event's order_id) belongs in it.
            schema.examples = [msgspec.Raw(msgspec.json.encode(example(name)))]
        if schema.properties and "metadata" in schema.properties and name.endswith(_REQUESTS):
            _state_metadata(schema.properties["metadata"])
    legs = (document.components.schemas or {}).get("LegIn")
    if legs is not None and legs.properties:
        legs.properties["amount"] = SIGNED_AMOUNT_IN
        legs.additional_properties = False
    return document


_REQUESTS = ("Request", "Operation")


def _refusal_examples(document: OpenAPI) -> None:
    """Each refusal documented with an example of its own status, written by the same
    code that answers it; each path parameter with an example, so "Try it out" in
    /docs runs as it opens."""
    for route, path in (document.paths or {}).items():
        for operation in (path.get, path.post, path.put):
            if operation is None:
                continue
            for parameter in operation.parameters or []:
                if isinstance(parameter, Parameter) and parameter.param_in == "path":
                    parameter.example = _PATH_EXAMPLES.get(parameter.name, 1)
            for status, response in (operation.responses or {}).items():
                if not isinstance(response, OpenAPIResponse) or not response.content:
                    continue
                media = response.content.get(PROBLEM_JSON)
                if media is None:
                    continue
                body = _problem_example(route, status, response.description or "")
                # A media object of its own: Litestar shares one among responses.
                response.content = {
                    **response.content,
                    PROBLEM_JSON: dataclasses.replace(media, example=msgspec.Raw(body)),
                }


def _problem_example(route: str, status: str, description: str) -> bytes:
    if status == "409" and description.startswith("Request in"):
        return refusal(RequestInProgress()).body
    if status == "409" and route == "/v1/deposits":
        return refusal(BalanceLimit(1, 99_999_999_999_999_900, 1_000, MAX_BALANCE_KOPECKS)).body
    if status == "422" and route in _MONEY_PATHS:
        return bad_amounts(["amount"]).body
    return _PROBLEM_EXAMPLES[status]


_MONEY_PATHS = frozenset(money.path.replace(":int", "") for money in MONEY_ROUTES)


_PATH_EXAMPLES: dict[str, Any] = {
    "user_id": 1,
    "order_id": 1001,
    "service_id": 5,
    "period": "2022-11.csv",
}
_NOT_JSON = "the body is not JSON: unexpected text at byte 0 (NaN and Infinity are not JSON)"
_UNAUTHENTICATED = "an Authorization: Bearer token is required"
_NO_SCOPE = "this token lacks the 'write' scope"
_PROBLEM_EXAMPLES = {
    "400": answer(
        400,
        "malformed-request",
        _NOT_JSON,
        [ProblemField("body", _NOT_JSON)],
    ).body,
    "401": answer(
        401, "unauthorized", _UNAUTHENTICATED, [ProblemField("Authorization", _UNAUTHENTICATED)]
    ).body,
    "403": answer(403, "forbidden", _NO_SCOPE, [ProblemField("Authorization", _NO_SCOPE)]).body,
    "404": refusal(UserNotFound(1)).body,
    "409": refusal(InsufficientFunds(1, 7500, 100000)).body,
    "413": answer(
        413,
        "body-too-large",
        BODY_TOO_LARGE,
        [ProblemField("body", BODY_TOO_LARGE)],
    ).body,
    "415": answer(
        415,
        "unsupported-media-type",
        "Content-Type: must be application/json (UTF-8)",
        [ProblemField("Content-Type", "must be application/json (UTF-8)")],
    ).body,
    "422": answer(
        422,
        "validation-failed",
        "the path parameter user_id must be a whole number",
        [ProblemField("user_id", "the path parameter user_id must be a whole number")],
    ).body,
    "503": refusal(StoreUnavailable("no database connection free within 30 s")).body,
}


def _state_metadata(schema: Schema | Reference) -> None:
    """What the decoder holds metadata to, which Litestar leaves out of the document."""
    if isinstance(schema, Schema):
        schema.max_properties = MAX_METADATA_KEYS
        schema.property_names = Schema(
            type=OpenAPIType.STRING,
            min_length=1,
            max_length=MAX_METADATA_KEY,
            pattern=METADATA_KEY,
        )
        schema.additional_properties = Schema(
            type=OpenAPIType.STRING, max_length=MAX_METADATA_VALUE, pattern=NO_CONTROL
        )


def _require_tokens(document: OpenAPI) -> None:
    for route, path in (document.paths or {}).items():
        if route.startswith("/v1"):
            for operation in (path.get, path.post, path.put):
                if operation is not None:
                    operation.security = [{SCHEME: []}]
                    operation.responses = {**(operation.responses or {}), **_AUTH_REFUSALS}


def _engine_refusals(document: OpenAPI) -> None:
    """What any /v1 route may answer besides its own refusals: 503 when the database
    cannot answer (a Retry-After says when to try again), and, on a route taking an
    Idempotency-Key, 409 while a request under the same key is still running."""
    for route, path in (document.paths or {}).items():
        if not route.startswith("/v1"):
            continue
        for operation in (path.get, path.post, path.put):
            if operation is None:
                continue
            responses = operation.responses = {**(operation.responses or {})}
            responses["503"] = _UNAVAILABLE
            keyed = any(
                isinstance(p, Parameter) and p.name == "Idempotency-Key"
                for p in operation.parameters or []
            )
            if keyed:
                running = "a request with this Idempotency-Key is still running: retry later"
                responses["409"] = _problem(
                    f"A rule refused it (see the problem type), or {running}"
                    if "409" in responses
                    else f"Request in progress: {running}"
                )
                for status, response in responses.items():
                    if isinstance(response, OpenAPIResponse) and status in _REPLAYABLE:
                        headers = {**(response.headers or {}), "Idempotent-Replayed": _REPLAYED}
                        responses[status] = dataclasses.replace(response, headers=headers)


def _close_bodies(document: OpenAPI) -> None:
    components = document.components.schemas or {}
    for path in (document.paths or {}).values():
        for operation in (path.post, path.put):
            if operation is None or operation.request_body is None:
                continue
            operation.responses = {**(operation.responses or {}), **_BODY_REFUSALS}
            for media in (operation.request_body.content or {}).values():  # type: ignore[union-attr]
                if isinstance(media.schema, Reference):
                    _close(components[media.schema.ref.rsplit("/", 1)[1]])


def _tag_operations(document: OpenAPI) -> None:
    """A batch's operations are told apart by `op`: say so, so a generated client
    reads each as its own type; each takes its single endpoint's fields exactly."""
    components = document.components.schemas or {}
    batch = components.get("BatchRequest")
    if batch is None or not batch.properties:
        return
    items = batch.properties["operations"].items  # type: ignore[union-attr]
    assert isinstance(items, Schema)
    assert items.one_of
    mapping = {}
    for ref in items.one_of:
        assert isinstance(ref, Reference)
        name = ref.ref.rsplit("/", 1)[1]
        operation = components[name]
        tag = operation.properties["op"].const  # type: ignore[index,union-attr]
        mapping[str(tag)] = ref.ref
        _close(operation)
        key = operation.properties["idempotency_key"]  # type: ignore[index]
        assert isinstance(key, Schema)
        key.default = None  # left out, not "": a key is 1..255 characters
    items.discriminator = Discriminator(property_name="op", mapping=mapping)


def _drop_null(schema: Schema) -> None:
    """An optional parameter is left out, never sent as null: publish it without null,
    so generated clients take a plain `str` or an enum, not a union with None."""
    if isinstance(schema.type, list | tuple):
        kinds = [t for t in schema.type if t != OpenAPIType.NULL]
        schema.type = kinds[0] if len(kinds) == 1 else kinds
    if schema.enum:
        schema.enum = [value for value in schema.enum if value is not None]
    if schema.one_of:
        rest = [s for s in schema.one_of if not (isinstance(s, Schema) and s.type == "null")]
        schema.one_of = rest
        if len(rest) == 1 and isinstance(rest[0], Schema):
            schema.one_of = None
            for field in dataclasses.fields(rest[0]):
                value = getattr(rest[0], field.name)
                if value is not None and getattr(schema, field.name) is None:
                    setattr(schema, field.name, value)


def _close(body: Schema) -> None:
    """The strict decoder refuses unknown fields and reads amounts as AMOUNT_IN says."""
    body.additional_properties = False
    if body.properties and "amount" in body.properties:
        body.properties["amount"] = AMOUNT_IN
    if body.properties and "credit_limit" in body.properties:
        body.properties["credit_limit"] = LIMIT_IN


def _problem(description: str) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        content={PROBLEM_JSON: OpenAPIMediaType(schema=Reference("#/components/schemas/Problem"))},
    )


_UNAVAILABLE = OpenAPIResponse(
    description=(
        "The database cannot answer now (down, failing over, or every connection busy):"
        " nothing was written, or, for a movement under an Idempotency-Key whose commit"
        " was cut off, a retry with the same key replays what was written"
    ),
    headers={
        "Retry-After": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.INTEGER, minimum=1),
            description="Seconds to wait before trying again",
        )
    },
    content={PROBLEM_JSON: OpenAPIMediaType(schema=Reference("#/components/schemas/Problem"))},
)
_REPLAYABLE = {"200", "201", "404", "409", "422"}
"""What a key may store and send again: an answer, or a rule's refusal."""
_REPLAYED = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING, enum=["true"]),
    description=(
        "`true` on an answer sent again under its Idempotency-Key (the first answer, a"
        " refusal too); absent on one answered now"
    ),
)
_AUTH_REFUSALS = {
    "401": _problem("No bearer token, or not a valid one (when BALANCE_API_TOKENS is set)"),
    "403": _problem("The token lacks the scope this route needs"),
}
_BODY_REFUSALS = {
    str(status): OpenAPIResponse(
        description=description,
        content={PROBLEM_JSON: OpenAPIMediaType(schema=Reference("#/components/schemas/Problem"))},
    )
    for status, description in (
        (413, "Body over 64 KiB (1 MiB for /v1/batches)"),
        (415, "Content-Type is not application/json"),
    )
}


def _exact_integer_bounds(schema: Schema) -> None:
    for bound in ("maximum", "minimum", "exclusive_maximum", "exclusive_minimum"):
        value = getattr(schema, bound)
        if isinstance(value, float) and value.is_integer():
            setattr(schema, bound, MAX_ID if value == float(MAX_ID) else int(value))


def _schemas(node: Any, seen: set[int] | None = None) -> list[Schema]:
    """Every Schema object in the document tree."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return []
    seen.add(id(node))
    found = [node] if isinstance(node, Schema) else []
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        children: Any = (getattr(node, f.name) for f in dataclasses.fields(node))
    elif isinstance(node, dict):
        children = node.values()
    elif isinstance(node, list | tuple):
        children = node
    else:
        return found
    for child in children:
        found.extend(_schemas(child, seen))
    return found
