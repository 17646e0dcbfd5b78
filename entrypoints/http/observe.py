"""One JSON log line and the metrics for every request, and its X-Request-ID.

A pure ASGI middleware, outermost, so it times and counts everything, refusals
and unmatched routes included. The request id comes from the caller's
X-Request-ID when it is a sane token, else a new one; it is returned on the
response and attached to every log line written while the request runs.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import msgspec
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Send

from entrypoints.http import metrics
from entrypoints.http.auth import caller_of

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
access = logging.getLogger("balance.access")

_SANE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


BODY_TIMEOUT = 408


class BodyWatch:
    """Requests waiting for the next part of their body, and since when: one that waits
    longer than `seconds` is answered 408 (BODY_TIMEOUT). granian times out only the
    headers, and Litestar nothing, so a client that sent its headers and then went
    silent held its request for as long as it kept the connection. The wait is for
    each part, as nginx's `client_body_timeout`: a slow body that keeps coming is not
    cut. No timer a request: a check every quarter of `seconds` while any waits."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._waiting: dict[asyncio.Task[Any], float] = {}
        self._overdue: set[asyncio.Task[Any]] = set()
        self._checking = False

    def receive(self, receive: Receive) -> Receive:
        """`receive` of the request this task serves, watched until the body's last
        part came."""
        whole = False
        task = asyncio.current_task()
        assert task is not None

        async def watched() -> ReceiveMessage:
            nonlocal whole
            if whole:  # the body came: what follows is a wait for the disconnect
                return await receive()
            self._waiting[task] = time.monotonic()
            if not self._checking:
                self._checking = True
                asyncio.get_running_loop().call_later(self.seconds / 4, self._check)
            try:
                message = await receive()
            except asyncio.CancelledError:
                if task not in self._overdue:
                    raise
                self._overdue.discard(task)
                task.uncancel()
                detail = f"no part of the body came for {self.seconds:g} s"
                raise HTTPException(detail, status_code=BODY_TIMEOUT) from None
            finally:
                del self._waiting[task]
            whole = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        return watched

    def _check(self) -> None:
        since = time.monotonic() - self.seconds
        for task, waiting_since in self._waiting.items():
            if waiting_since < since and task not in self._overdue:
                self._overdue.add(task)
                task.cancel()
        if self._waiting:
            asyncio.get_running_loop().call_later(self.seconds / 4, self._check)
        else:
            self._checking = False


_BODIES = frozenset({"POST", "PUT", "PATCH"})
# A metric's label: any other method a client sends (granian passes any token, of any
# case and length) would add a series to every worker's files and to Prometheus, for
# good. The access line keeps the method as sent.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe(
    pool_in_use: Callable[[], int] | None = None, body_seconds: float = 10.0
) -> Callable[[ASGIApp], ASGIApp]:
    def middleware(app: ASGIApp) -> ASGIApp:
        bodies = BodyWatch(body_seconds)

        async def observed(scope: Any, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            method = scope["method"]
            if method in _BODIES:
                receive = bodies.receive(receive)
            elif method == "HEAD":
                # HEAD is GET without the content (RFC 9110, 9.3.2: every server must
                # take it; uptime checkers send it): the route's GET answers, its
                # status and headers, Content-Length included, go out, its body not.
                scope = {**scope, "method": "GET"}
                send = _headers_only(send)
            started = time.perf_counter()
            given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
            # 32 random hex digits, as uuid4().hex but without building a UUID.
            rid = given.decode() if given and _SANE_ID.fullmatch(given) else os.urandom(16).hex()
            token = request_id.set(rid)
            status = 500

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    headers = [*message.get("headers", ()), (b"x-request-id", rid.encode())]
                    if status == 405 or method == "OPTIONS":
                        headers = [(k, _and_head(k, v)) for k, v in headers]
                    message["headers"] = headers
                await send(message)

            try:
                await app(scope, receive, send_with_id)
            finally:
                duration = time.perf_counter() - started
                route = scope.get("path_template") or "unmatched"
                label = method if method in _METHODS else "other"
                metrics.request_done(label, route, status, duration, pool_in_use)
                caller = caller_of(scope)
                if _lines is not None:
                    _lines.write(
                        method,
                        route,
                        scope["path"],
                        status,
                        seconds=duration,
                        rid=rid,
                        caller=caller,
                    )
                elif access.isEnabledFor(logging.INFO):
                    extra = {
                        "method": method,
                        "route": route,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(duration * 1000, 3),
                        "request_id": rid,
                    }
                    if caller is not None:
                        extra["caller"] = caller
                    access.info("%s %s %d", method, route, status, extra=extra)
                request_id.reset(token)

        return observed

    return middleware


def _and_head(name: bytes, value: bytes) -> bytes:
    """An Allow header that names GET names HEAD too: every GET route takes it."""
    if name.lower() == b"allow" and b"GET" in value and b"HEAD" not in value:
        return value + b", HEAD"
    return value


def _headers_only(send: Send) -> Send:
    async def without_content(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return without_content


_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


_stamp: tuple[int, str] = (-1, "")


def _timestamp(seconds: float) -> str:
    """UTC to the millisecond, as every line carries it: the date and time part is
    formatted once a second."""
    global _stamp  # noqa: PLW0603
    whole = int(seconds)
    if _stamp[0] != whole:
        _stamp = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_stamp[1]}.{int((seconds - whole) * 1000):03d}Z"


class AccessLines:
    """The access log's lines as the JSON formatter writes them (the same fields in
    the same order), encoded by msgspec and written straight to the log's stream,
    the lines of one turn of the event loop in one write: about 2 µs a request,
    where the logging module's record, filter, handler lock, json.dumps and write
    took 16 (a seventh of what a worker spends answering /health/live)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lines: list[bytes] = []

    def write(
        self,
        method: str,
        route: str,
        path: str,
        status: int,
        *,
        seconds: float,
        rid: str,
        caller: str | None = None,
    ) -> None:
        line = {
            "ts": _timestamp(time.time()),
            "level": "info",
            "logger": "balance.access",
            "message": f"{method} {route} {status}",
            "request_id": rid,
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
        }
        if caller is not None:  # the named token's, once the guard let it in
            line["caller"] = caller
        self._lines.append(_encode(line))
        if len(self._lines) == 1:  # the turn's first: write them all once it ends
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: at once
                self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        data = b"\n".join(self._lines) + b"\n"
        self._lines.clear()
        while data:
            data = data[os.write(self._fd, data) :]


_encode = msgspec.json.Encoder().encode
_lines: AccessLines | None = None
"""Set by configure_logging when access lines are JSON on standard error; otherwise
they go through the logging module (and so to whatever handlers a test installs)."""


@atexit.register
def flush_access_lines() -> None:
    """Write the lines of this turn of the event loop now (and at exit)."""
    if _lines is not None:
        _lines.flush()


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id, extras, error."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid is not None:
            line["request_id"] = rid
        line.update(
            {k: v for k, v in record.__dict__.items() if k not in _RESERVED and v is not None}
        )
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line["error"] = f"{type(error).__name__}: {error}"
            line["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False, separators=(",", ":"))


class RequestIdFilter(logging.Filter):
    """Stamp the request being served on every line written while it runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


def granian_logging(level: str, fmt: str) -> dict[str, Any]:
    """granian's own loggers (start, stop, workers) in the same format as ours."""
    formatter = (
        {"()": JsonFormatter}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    # granian applies this in every worker, and dictConfig drops the handlers set
    # before it: so the root logger (ours) is configured here too.
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"balance": formatter},
        "filters": {"request_id": {"()": RequestIdFilter}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "balance",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "_granian": {"handlers": ["console"], "level": level, "propagate": False},
            "granian.access": {"handlers": ["console"], "level": level, "propagate": False},
        },
    }


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    global _lines  # noqa: PLW0603
    _lines = None
    if fmt == "json" and access.isEnabledFor(logging.INFO):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # no descriptor
            _lines = AccessLines(sys.stderr.fileno())
