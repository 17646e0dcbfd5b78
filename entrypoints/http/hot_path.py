"""The money routes served straight from ASGI, in front of Litestar.

Litestar's per-request machinery (routing, kwargs, dependency injection, DTO,
response objects) is about an eighth of a worker's CPU for a money movement
(bench/RESULTS.md, `python -m bench.app_cpu`). The hot path serves a POST to a
money route that it fully understands with the same pieces the Litestar handler
uses: the route table of `money.py`, strict decoding, the token check, the use
case under its Idempotency-Key, and the problem table for refusals of the rules.

Anything else goes to Litestar untouched, the body read so far replayed: other
routes and methods, a missing or unfit token, a Content-Type, Content-Length,
Host, body, JSON or field it would refuse, a repeated header. So every refusal of
a request's form has one implementation, Litestar's, and the hot path cannot
answer such a request differently from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from litestar.types import ASGIApp, Receive, Send

from application.errors import ApplicationError
from domain.errors import DomainError
from entrypoints.http.auth import Tokens, bearer
from entrypoints.http.controllers import Services
from entrypoints.http.decoding import (
    RequestInvalid,
    check_body_text,
    check_content_type,
    decode_strict,
)
from entrypoints.http.money import MONEY_ROUTES, MoneyRoute, idempotency_key
from entrypoints.http.problems import PROBLEM_JSON, Answer, failure, refusal
from entrypoints.http.schemas import MAX_ID

_ORDER = "{order_id:int}"
_FIXED = {route.path: route for route in MONEY_ROUTES if _ORDER not in route.path}
_BY_ORDER = tuple(
    (re.compile(re.escape(route.path).replace(re.escape(_ORDER), "([1-9][0-9]{0,18})")), route)
    for route in MONEY_ROUTES
    if _ORDER in route.path
)
# Litestar's label for a route: {order_id}, not {order_id:int}
_TEMPLATES = {route.path: route.path.replace(_ORDER, "{order_id}") for route in MONEY_ROUTES}
# Stricter than any server's rule for a Host header: what it refuses, Litestar judges.
_PLAIN_HOST = re.compile(rb"[A-Za-z0-9.\-:\[\]]*")
_HEADERS = (b"authorization", b"content-length", b"content-type", b"host", b"idempotency-key")
_JSON = b"application/json"
_PROBLEM = PROBLEM_JSON.encode()


def hot_path(
    app: ASGIApp,
    services: Callable[[], Services],
    tokens: Tokens | None,
    max_body: int,
    scopes: Mapping[str, str],
) -> ASGIApp:
    """`app` (Litestar) behind the hot path for the money routes. `scopes` is the
    scope each route declares to Litestar (path -> scope): the hot path asks the same."""
    missing = [route.path for route in MONEY_ROUTES if route.path not in scopes]
    if missing:
        raise RuntimeError(f"a money route declares no scope: {missing}")
    needed = {route.path: scopes[route.path] for route in MONEY_ROUTES}

    async def serve(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        found = _route(scope["path"])
        headers = _headers(scope["headers"]) if found else None
        if (
            found is None
            or headers is None
            or not _fits(headers, tokens, needed[found[0].path], max_body)
        ):
            await app(scope, receive, send)
            return
        route, order_id = found
        received, body = await _read(receive, max_body)
        decoded = _decode(route, headers, body) if body is not None else None
        if decoded is None:
            await app(scope, _replay(received, receive), send)
            return
        data, key = decoded
        scope["path_template"] = _TEMPLATES[route.path]  # the route label in logs and metrics
        try:
            stored = await route.apply(services().movements, data, order_id, key)
        except (DomainError, ApplicationError) as error:
            await _send(send, refusal(error), _PROBLEM)
        except Exception as error:
            await _send(send, failure("POST", scope["path"], error), _PROBLEM)
        else:
            await _send(send, Answer(stored.status, stored.body, None), _JSON)

    return serve


def _route(path: str) -> tuple[MoneyRoute[Any], int] | None:
    if (route := _FIXED.get(path)) is not None:
        return route, 0
    for pattern, by_order in _BY_ORDER:
        if (match := pattern.fullmatch(path)) and (order_id := int(match[1])) <= MAX_ID:
            return by_order, order_id
    return None


def _decode(
    route: MoneyRoute[Any], headers: dict[bytes, bytes], body: bytes
) -> tuple[Any, str | None] | None:
    """The request and its key as the Litestar handler would take them; None if it
    would refuse them."""
    key = headers.get(b"idempotency-key")
    try:
        check_content_type(headers.get(b"content-type", b"").decode("latin-1"))
        data = decode_strict(body, route.request)
        check_body_text(body)
        return data, idempotency_key(None if key is None else key.decode("latin-1"))
    except RequestInvalid:
        return None


def _headers(raw: Any) -> dict[bytes, bytes] | None:
    """The headers the hot path reads; None when one of them is given twice."""
    found: dict[bytes, bytes] = {}
    for name, value in raw:
        if name in _HEADERS:
            if name in found:
                return None
            found[name] = value
    return found


def _fits(headers: dict[bytes, bytes], tokens: Tokens | None, scope: str, max_body: int) -> bool:
    length = headers.get(b"content-length")
    if length is not None and not (length.isdigit() and int(length) <= max_body):
        return False
    if not _PLAIN_HOST.fullmatch(headers.get(b"host", b"")):
        return False
    if tokens is None:
        return True
    token = bearer(headers.get(b"authorization", b"").decode("latin-1"))
    granted = tokens.scopes(token) if token is not None else None
    return granted is not None and scope in granted


async def _read(receive: Receive, max_body: int) -> tuple[list[Any], bytes | None]:
    """The messages received and the body; no body when it ended early or grew too big."""
    received: list[Any] = []
    size = 0
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            return received, None
        size += len(message.get("body", b""))
        if size > max_body:
            return received, None
        if not message.get("more_body", False):
            return received, b"".join(m.get("body", b"") for m in received)


def _replay(received: list[Any], receive: Receive) -> Receive:
    """`receive` as if nothing had been read from it yet."""
    pending = list(received)

    async def again() -> Any:
        return pending.pop(0) if pending else await receive()

    return again


async def _send(send: Send, answer: Answer, media_type: bytes) -> None:
    headers = [(b"content-type", media_type), (b"content-length", str(len(answer.body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (answer.headers or {}).items()]
    start: Any = {"type": "http.response.start", "status": answer.status, "headers": headers}
    await send(start)
    body: Any = {"type": "http.response.body", "body": answer.body}
    await send(body)
