"""The events' AsyncAPI 3.0 document, generated from the structs the relay encodes
(`balance asyncapi` prints it; docs/asyncapi.yaml is its output, and a test keeps the
two equal and checks real messages against the schema)."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from adapters.amqp.publisher import EXCHANGE, SOURCE
from adapters.event_message import EVENT_TYPES, EventOut
from entrypoints.http.app import VERSION


def asyncapi() -> dict[str, Any]:
    (schema,), components = msgspec.json.schema_components(
        [EventOut], ref_template="#/components/schemas/{name}"
    )
    headers = {
        "type": "object",
        "required": [
            "cloudEvents:specversion",
            "cloudEvents:id",
            "cloudEvents:source",
            "cloudEvents:type",
            "cloudEvents:time",
        ],
        "properties": {
            "cloudEvents:specversion": {"type": "string", "const": "1.0"},
            "cloudEvents:id": {"type": "string", "description": "The event_id"},
            "cloudEvents:source": {"type": "string", "const": SOURCE},
            "cloudEvents:type": {
                "type": "string",
                "enum": [f"balance.{name}" for name in EVENT_TYPES],
            },
            "cloudEvents:time": {"type": "string", "format": "date-time"},
            "cloudEvents:subject": {"type": "string", "description": "user/<user_id>"},
        },
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Balance service events",
            "version": VERSION,
            "description": (
                "One event per user a committed ledger transaction touches, and one per"
                " limit change, written in the same database transaction (an outbox) and"
                " published by the relay in event_id order, at least once: consumers drop"
                " repeats by event_id (the AMQP message_id). The pull API (GET /v1/events)"
                " answers the same objects."
            ),
        },
        "servers": {
            "rabbitmq": {
                "host": "127.0.0.1:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "BROKER_URL",
            }
        },
        "channels": {
            "balanceEvents": {
                "address": "user.{user_id}.{type}",
                "description": f"Routing keys on the durable topic exchange `{EXCHANGE}`",
                "parameters": {
                    "user_id": {"description": "The user the event is about"},
                    "type": {"enum": list(EVENT_TYPES), "description": "The event's type"},
                },
                "messages": {"event": {"$ref": "#/components/messages/event"}},
                "bindings": {
                    "amqp": {
                        "is": "routingKey",
                        "exchange": {
                            "name": EXCHANGE,
                            "type": "topic",
                            "durable": True,
                            "autoDelete": False,
                            "vhost": "/",
                        },
                        "bindingVersion": "0.3.0",
                    }
                },
            }
        },
        "operations": {
            "publishEvent": {
                "action": "send",
                "channel": {"$ref": "#/channels/balanceEvents"},
                "messages": [{"$ref": "#/channels/balanceEvents/messages/event"}],
            }
        },
        "components": {
            "messages": {
                "event": {
                    "name": "event",
                    "contentType": "application/json",
                    "headers": headers,
                    "payload": schema,
                    "bindings": {
                        "amqp": {
                            "deliveryMode": 2,
                            "messageType": "event",
                            "bindingVersion": "0.3.0",
                        }
                    },
                }
            },
            "schemas": components,
        },
    }


def asyncapi_document() -> str:
    """YAML (every string JSON-quoted, which YAML reads as is)."""
    return "".join(_yaml(asyncapi(), 0)) + "\n"


def _yaml(value: Any, indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines += [f"{pad}{json.dumps(key)}:\n", *_yaml(item, indent + 1)]
            else:
                lines.append(f"{pad}{json.dumps(key)}: {json.dumps(item)}\n")
    else:
        for item in value:
            if isinstance(item, dict | list) and item:
                inner = _yaml(item, indent + 1)
                lines += [f"{pad}- {inner[0].lstrip()}", *inner[1:]]
            else:
                lines.append(f"{pad}- {json.dumps(item)}\n")
    return lines
