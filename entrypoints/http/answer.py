"""A JSON answer handed to the server as it is: an ASGI app of two messages.

Litestar passes a handler's ASGI app through untouched (a handler annotated to
return one skips building a `Response` and converting it to an `ASGIResponse`,
about a twentieth of a money request's CPU). The body is bytes already encoded;
the headers are exactly those Litestar's `Response` sent for it: the media type
and the length; and for an answer sent again under its Idempotency-Key,
`Idempotent-Replayed: true`."""

from __future__ import annotations

from litestar.types import Receive, Scope, Send

from application.ports import StoredResponse

_JSON = (b"content-type", b"application/json")
_REPLAYED = (b"idempotent-replayed", b"true")


class JsonAnswer:
    __slots__ = ("body", "replayed", "status")

    def __init__(self, body: bytes, status: int = 200, *, replayed: bool = False) -> None:
        self.body = body
        self.status = status
        self.replayed = replayed

    @classmethod
    def of(cls, stored: StoredResponse) -> JsonAnswer:
        """A stored answer (a movement's, or its replay) as it is sent."""
        return cls(stored.body, stored.status, replayed=stored.replayed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG002
        headers = [_JSON, (b"content-length", str(len(self.body)).encode())]
        if self.replayed:  # sent again under its Idempotency-Key
            headers.append(_REPLAYED)
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})
