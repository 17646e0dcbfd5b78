"""Strict request decoding: exact decimals, no type coercion, the offending field named.

Litestar's default path decodes JSON numbers to floats before validation, which
would quietly turn 150.2500000000000001 into 150.25. Money cannot have that, so
bodies are decoded here straight from bytes to the declared struct.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec
from litestar.dto import MsgspecDTO
from litestar.typing import FieldDefinition

from entrypoints.http.schemas import (
    METADATA_KEY,
    NO_CONTROL,
    OPERATIONS,
    PRINTABLE_ASCII,
    SOME_TEXT,
)

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)

_FIELD_PATH = re.compile(r" - at `\$\.?([^`]*)`$")

# An amount sent as a string is written the one plain way: digits, then a point and
# one or two decimals; Decimal() alone would also take " 1", "+1", "1_000", "1e2".
# The form is checked here; the domain then says why "0" or too much is refused.
# AMOUNT_TEXT, the documented pattern, is exactly the accepted strings (0.01 up to
# 10000000000000.00).
_AMOUNT_FORM = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]{1,2})?")  # signed: a movement's legs
AMOUNT_TEXT = r"^([1-9][0-9]{0,12}(\.[0-9]{1,2})?|10000000000000(\.00?)?|0\.([1-9][0-9]?|0[1-9]))$"
SIGNED_AMOUNT_TEXT = "^-?" + AMOUNT_TEXT[1:]
LIMIT_TEXT = r"^((0|[1-9][0-9]{0,12})(\.[0-9]{1,2})?|10000000000000(\.00?)?)$"
_FORMS = {"amount": _AMOUNT_FORM, "credit_limit": re.compile(r"(0|[1-9][0-9]*)(\.[0-9]{1,2})?")}


BODY_REQUIRED = "a JSON body is required"
CLIENT_GONE = "client disconnected prematurely"
"""Litestar's words (`Request.stream`), and the money routes' (`money.read_body`), for
a client that closed its connection before the whole body came."""


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str
    bad_amount: bool = False
    """An amount given and written wrong: answered as `invalid-amount`, saying what an
    amount may be (problems.py). Said where the error is found, not guessed later
    from the field's name: an amount missing, unknown to the route or given twice is
    a plain validation failure."""


class RequestInvalid(Exception):
    """The request cannot be read (400) or breaks the schema (422)."""

    def __init__(self, status: int, detail: str, errors: list[FieldError]) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


def invalid_field(field: str, message: str, *, bad_amount: bool = False) -> RequestInvalid:
    error = FieldError(field, message, bad_amount)
    return RequestInvalid(422, f"{field}: {message}" if field else message, [error])


def unknown_parameter(name: str, takes: list[str]) -> RequestInvalid:
    """A query parameter the route does not take (422, named like any bad field)."""
    names = ", ".join(takes) or "none"
    if not name:  # `?=1`: nothing to name, so the message says so
        return invalid_field("", f"a query parameter needs a name; this route takes {names}")
    return invalid_field(name, f"is not a parameter of this route, which takes {names}")


def decode_strict(body: bytes, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=type_, strict=True)
    except msgspec.ValidationError as error:
        raise _metadata_problem(body, str(error)) or _validation_problem(str(error)) from None
    except msgspec.DecodeError as error:
        raise _malformed_body(_malformed(str(error), body)) from None
    except UnicodeDecodeError:
        raise _malformed_body("the body is not JSON: it is not UTF-8") from None


def _malformed_body(detail: str) -> RequestInvalid:
    """400, naming the body as every other refusal names its field."""
    return RequestInvalid(400, detail, [FieldError("body", detail)])


_METADATA_AT = re.compile(r"`\$\.?((?:[\w\[\]]+\.)*metadata)(?:\[\.\.\.\])?`")
_METADATA_KEY = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _metadata_problem(body: bytes, message: str) -> RequestInvalid | None:
    """msgspec says a metadata object is wrong, not which key: find it and name it
    (`metadata.order`, `operations[2].metadata.order`)."""
    found = _METADATA_AT.search(message)
    if found is None:
        return None
    place = found.group(1)
    try:
        value: Any = json.loads(body)
        for name, index in re.findall(r"(\w+)|\[(\d+)\]", place):
            value = value[name] if name else value[int(index)]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    wrong = _metadata_fault(value)
    return invalid_field(".".join(filter(None, (place, wrong[0]))), wrong[1]) if wrong else None


def _metadata_fault(value: Any) -> tuple[str, str] | None:
    """(the key at fault, or "" for the whole object, and why)."""
    if not isinstance(value, dict):
        return "", "must be an object of string keys to string values"
    if len(value) > 20:
        return "", f"must have at most 20 keys, has {len(value)}"
    for key, item in value.items():
        if not _METADATA_KEY.fullmatch(key):
            return key, "key must be 1..40 of A-Z a-z 0-9 _ . -"
        if not isinstance(item, str) or len(item) > 500 or _CONTROL.search(item):
            return key, "must be a string of at most 500 characters, no control characters"
    return None


# A \u escape of half of a UTF-16 surrogate pair: a high half (D800-DBFF) not
# followed by a low one, or a low half (DC00-DFFF) after no high one. Half a character,
# which no text column can hold.
_SURROGATE = re.compile(rb"(\\+)u[dD]([89abAB]|[c-fC-F])[0-9a-fA-F]{2}")


def _lone_surrogate(body: bytes) -> tuple[int, str] | None:
    """Where the first half of a surrogate pair alone is, and its escape."""
    high: tuple[int, int, str] | None = None  # the high half just seen: start, end, escape
    for found in _SURROGATE.finditer(body):
        slashes = len(found.group(1))
        if slashes % 2 == 0:  # `\\ud800`: a backslash, then text
            continue
        at, escape = found.start() + slashes - 1, found.group()[slashes - 1 :].decode()
        if high is not None:
            if found.group(2) not in b"89abAB" and at == high[1]:
                high = None  # the pair is whole
                continue
            return high[0], high[2]
        if found.group(2) not in b"89abAB":
            return at, escape
        high = (at, found.end(), escape)
    return (high[0], high[2]) if high is not None else None


def _malformed(message: str, body: bytes) -> str:
    # msgspec says "truncated" of a string that ends in a high half too.
    if ("truncated" in message or "surrogate" in message) and (half := _lone_surrogate(body)):
        at, escape = half
        return (
            f"the body is not JSON: a string has half of a UTF-16 surrogate pair"
            f" ({escape}) at byte {at}"
        )
    if "truncated" in message:
        return "the body is not whole JSON: it ends too early (or is empty)"
    found = _MALFORMED.search(message)
    if found is None:
        return "the body is not JSON"
    reason, at = found.group(1), int(found.group(2))
    # msgspec names the byte where it gave up, at or just past what it could not read.
    near = body[max(0, at - 10) : at + 10]
    hint = " (NaN and Infinity are not JSON)" if _NOT_FINITE.search(near) else ""
    return f"the body is not JSON: {_REASONS.get(reason, reason)} at byte {at}{hint}"


_MALFORMED = re.compile(r"JSON is malformed: (.+) \(byte (\d+)\)")
_NOT_FINITE = re.compile(rb"(?<![\w\"])[-+]?(nan|inf|infinity)(?![\w\"])", re.IGNORECASE)
_REASONS = {"invalid character": "unexpected text"}


# msgspec's words for JSON types, as a sentence says them.
_KINDS = {
    "int": "a whole number",
    "float": "a number",
    "decimal": "a number",
    "str": "a string",
    "bool": "true or false",
    "null": "null",
    "array": "a list",
    "object": "an object",
    "datetime": "a date and time (RFC 3339)",
}
_PATTERNS = {
    NO_CONTROL: "must not contain control characters",
    SOME_TEXT: "must have text and no control characters",
    METADATA_KEY: "must be of A-Z a-z 0-9 _ . - only",
    PRINTABLE_ASCII: "must be printable ASCII",
}


def _types(found: re.Match[str]) -> str:
    want, got = (_KINDS.get(k, k) for k in found.groups())
    return f"must be {want}, not {got}"


def _length(found: re.Match[str]) -> str:
    kind, bound, size = found.groups()
    most = "most" if bound == "<=" else "least"
    unit = ("character" if kind == "str" else "item") + ("" if size == "1" else "s")
    return (
        f"must be at {most} {size} {unit} long"
        if kind == "str"
        else f"must have at {most} {size} {unit}"
    )


def _bound(found: re.Match[str]) -> str:
    words = {"<=": "at most", ">=": "at least", "<": "less than", ">": "more than"}
    return f"must be {words[found.group(1)]} {found.group(2)}"


_RFC3339 = "e.g. 2022-11-01T00:00:00Z"
# msgspec's messages, each with its sentence; the first pattern that matches says it.
_SENTENCES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = tuple(
    (re.compile(pattern, re.S), say)
    for pattern, say in (
        (r"Expected `(\w+)`, got `(\w+)`", _types),
        (r"Expected `(\w+)` of length (<=|>=) (\d+)", _length),
        (r"Expected `\w+` (<=|>=|<|>) (-?[\d.]+)", _bound),
        (
            r"Expected `str` matching regex '(.*)'",
            lambda found: _PATTERNS.get(
                found.group(1).encode().decode("unicode_escape"), "is not allowed"
            ),
        ),
        (
            r"Expected `datetime` with a timezone component",
            lambda _: f"needs a time zone (RFC 3339), {_RFC3339}",
        ),
        (
            r"Expected `(\w+)`",
            lambda found: f"must be {_KINDS.get(found.group(1), found.group(1))}",
        ),
        # A batch operation's `op`: the one tagged union.
        (
            r"Invalid value '(.*)'",
            lambda found: f"must be one of {', '.join(OPERATIONS)}, not {_quoted(found.group(1))}",
        ),
        (
            r"Invalid enum value '(.*)'",
            lambda found: f"is not one of the values it takes: {_quoted(found.group(1))}",
        ),
        (r"Invalid RFC3339 encoded datetime", lambda _: f"must be an RFC 3339 time, {_RFC3339}"),
    )
)


def _sentence(text: str) -> str:
    """msgspec's message in plain words: "must be a whole number, not a string"."""
    for pattern, say in _SENTENCES:
        if found := pattern.fullmatch(text):
            return say(found)
    return text


def _quoted(value: str) -> str:
    """A client's value in a message: quoted, and cut short if long."""
    return repr(value if len(value) <= 40 else value[:40] + "...")


def parameter_sentence(text: str) -> str:
    """A query or header parameter's message: as a body field's, but a parameter is
    always text, so a number written as something else is not "a string"."""
    return re.sub(r", not a string$", "", _sentence(text))


def _is_amount(field: str) -> bool:
    return field == "amount" or field.endswith(".amount")


def _validation_problem(message: str) -> RequestInvalid:
    match = _FIELD_PATH.search(message)
    text = _sentence(message[: match.start()] if match else message)
    missing = re.match(r"Object missing required field `(\w+)`", text)
    unknown = re.match(r"Object contains unknown field `(\w+)`", text)
    prefix = match.group(1) if match and match.group(1) else ""
    if missing or unknown:
        name = (missing or unknown).group(1)  # type: ignore[union-attr]
        field = f"{prefix}.{name}" if prefix else name
        text = "is required" if missing else "is not a known field"
        return invalid_field(field, text)
    field = prefix or "body"
    return invalid_field(field, text, bad_amount=_is_amount(field))


class StrictJSON(MsgspecDTO[S], Generic[S]):
    """A DTO that keeps the struct's OpenAPI schema but decodes with `decode_strict`."""

    def __class_getitem__(cls, annotation: Any) -> Any:
        dto = super().__class_getitem__(annotation)
        # The schema is named after the struct, the same in every app built in a process.
        dto.__schema_name__ = getattr(annotation, "__name__", None)
        return dto

    @classmethod
    def create_openapi_schema(
        cls,
        field_definition: FieldDefinition,
        handler_id: str,  # noqa: ARG003 - Litestar passes it by name
        schema_creator: Any,
    ) -> Any:
        """The struct's own schema: Litestar's transfer models lose the tags of a
        tagged union (a batch's operations), the struct keeps them."""
        annotation = FieldDefinition.from_annotation(
            cls.model_type, kwarg_definition=field_definition.kwarg_definition
        )
        return schema_creator.for_field_definition(annotation)

    def decode_bytes(self, value: bytes) -> Any:
        given = self.asgi_connection.headers.getall("content-type", [])
        if len(given) > 1:
            raise content_type_twice()
        check_content_type(given[0] if given else None)
        decoded = decode_strict(value, self.model_type)
        check_body_text(value)
        return decoded


def content_type_twice() -> RequestInvalid:
    """Two Content-Type headers: which one a proxy passes on is anyone's guess, so the
    body is read as neither (as two Idempotency-Key or Authorization headers)."""
    message = "is given more than once"
    return RequestInvalid(415, f"Content-Type: {message}", [FieldError("Content-Type", message)])


def check_content_type(value: str | None) -> None:
    """JSON in UTF-8 only: a form post or text/plain is refused, not read as JSON."""
    media, _, parameters = (value or "").partition(";")
    charset = ""
    for parameter in parameters.split(";"):
        name, _, given = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = given.strip().strip('"').lower()
    if media.strip().lower() != "application/json" or charset not in ("", "utf-8"):
        message = "must be application/json (UTF-8)"
        raise RequestInvalid(415, f"Content-Type: {message}", [FieldError("Content-Type", message)])


def check_body_text(body: bytes) -> None:
    """What typed decoding cannot see, on a body it already accepted: a key given
    twice (msgspec keeps the last: {"amount": "1", "amount": "1000"} is ambiguous,
    so refused), and the written form of a string amount; each named by its place
    (`amount`, `operations[3].amount`)."""
    document = _TEXT_DECODER.decode(body.decode())
    if isinstance(document, list):
        _check(document, "")


class _Number(str):
    """A JSON number's text, told apart from a JSON string."""

    __slots__ = ()


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as written: its pairs in order, repeats included."""


# Numbers stay text: the values were typed already, and int() of 5,000 digits fails.
# One decoder for every body (json.loads with hooks builds a new one each call).
_TEXT_DECODER = json.JSONDecoder(object_pairs_hook=_Pairs, parse_int=_Number, parse_float=_Number)


def _check(value: _Pairs | list[Any], place: str) -> None:
    """Every object inside `value`, where `place` names it; a place is spelt out only for
    an object or array to go into, or a refusal."""
    if isinstance(value, _Pairs):
        seen: set[str] = set()
        for key, item in value:
            if key in seen:
                raise invalid_field(_field(place, key), "is given more than once")
            seen.add(key)
            form = _FORMS.get(key)
            if form is not None and type(item) is str and not form.fullmatch(item):
                field = _field(place, key)
                raise invalid_field(
                    field,
                    'must be written like "150.25": digits, then at most 2 decimals',
                    bad_amount=_is_amount(field),
                )
            if isinstance(item, list):  # _Pairs, a list too, or an array
                _check(item, _field(place, key))
    else:
        for index, item in enumerate(value):
            if isinstance(item, list):
                _check(item, f"{place}[{index}]")


def _field(place: str, key: str) -> str:
    return f"{place}.{key}" if place else key
