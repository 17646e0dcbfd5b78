"""docs/asyncapi.yaml is what `balance asyncapi` prints from the structs the relay
encodes, and a message as the relay encodes it fits its schema."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import jsonschema_rs
import msgspec
import yaml

from adapters.amqp.publisher import properties_of, routing_key
from adapters.event_message import encode_event
from application.events import Event, StoredEvent
from entrypoints.asyncapi import asyncapi_document

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def test_the_document_in_docs_is_the_generated_one() -> None:
    assert DOCUMENT.read_text() == asyncapi_document(), "run: balance asyncapi > docs/asyncapi.yaml"


def test_an_encoded_event_and_its_properties_fit_the_document() -> None:
    document = yaml.safe_load(DOCUMENT.read_text())
    message = document["components"]["messages"]["event"]
    limits = Event("limits_changed", 7, 3, None, 0, 0, 0, -500, 100, "k-1", 1000, True)
    stored = StoredEvent(42, limits, datetime(2026, 12, 3, tzinfo=UTC))
    body = msgspec.json.decode(encode_event(stored))
    payload = {**message["payload"], "components": document["components"]}
    jsonschema_rs.Draft202012Validator(payload).validate(body)
    assert (body["credit_limit"], body["frozen"], body["balance"]["available"]) == (
        "10.00",
        True,
        "-5.00",
    )
    properties = properties_of(stored)
    jsonschema_rs.Draft202012Validator(message["headers"]).validate(properties.headers)
    assert (properties.message_id, routing_key(stored)) == ("42", "user.7.limits_changed")
    assert properties.delivery_mode == 2
