"""Strict request decoding: exact decimals, no type coercion, the offending field named.

Litestar's default path decodes JSON numbers to floats before validation, which
would quietly turn 150.2500000000000001 into 150.25. Money cannot have that, so
bodies are decoded here straight from bytes to the declared struct.
"""

from __future__ import annotations

import re
from typing import Any, Generic, TypeVar

import msgspec
from litestar.dto import MsgspecDTO

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)

_FIELD_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str


class RequestInvalid(Exception):
    """The request cannot be read (400) or breaks the schema (422)."""

    def __init__(self, status: int, detail: str, errors: list[FieldError]) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


def invalid_field(field: str, message: str) -> RequestInvalid:
    return RequestInvalid(422, f"{field}: {message}", [FieldError(field, message)])


def decode_strict(body: bytes, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=type_, strict=True)
    except msgspec.ValidationError as error:
        raise _validation_problem(str(error)) from None
    except msgspec.DecodeError as error:
        raise RequestInvalid(400, f"malformed JSON: {error}", []) from None


def _validation_problem(message: str) -> RequestInvalid:
    match = _FIELD_PATH.search(message)
    text = message[: match.start()] if match else message
    missing = re.match(r"Object missing required field `(\w+)`", text)
    unknown = re.match(r"Object contains unknown field `(\w+)`", text)
    prefix = match.group(1) if match and match.group(1) else ""
    if missing or unknown:
        name = (missing or unknown).group(1)  # type: ignore[union-attr]
        field = f"{prefix}.{name}" if prefix else name
        text = "is required" if missing else "is not a known field"
    else:
        field = prefix or "body"
    return invalid_field(field, text)


class StrictJSON(MsgspecDTO[S], Generic[S]):
    """A DTO that keeps the struct's OpenAPI schema but decodes with `decode_strict`."""

    def decode_bytes(self, value: bytes) -> Any:
        return decode_strict(value, self.model_type)
