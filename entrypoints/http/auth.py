"""Bearer tokens with scopes (BALANCE_API_TOKENS). Every /v1 route names the scope it
needs in its `opt`; an app with a /v1 route that names none refuses to start."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from entrypoints.settings import SCOPES

READ, WRITE, REPORT, ADMIN = ({"scope": s} for s in SCOPES)
SCHEME = "BearerToken"


@dataclass(frozen=True, slots=True)
class Tokens:
    """token -> scopes. Looked up in constant time: every token is compared."""

    grants: tuple[tuple[bytes, frozenset[str]], ...]

    @classmethod
    def of(cls, grants: Iterable[tuple[str, frozenset[str]]]) -> Tokens:
        return cls(tuple((token.encode(), scopes) for token, scopes in grants))

    def scopes(self, presented: str) -> frozenset[str] | None:
        candidate = presented.encode()
        found = None
        for token, scopes in self.grants:
            if hmac.compare_digest(token, candidate):
                found = scopes
        return found


def scope_of(handler: BaseRouteHandler) -> str | None:
    scope = handler.opt.get("scope")
    return scope if isinstance(scope, str) else None


def bearer(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if that is what it is."""
    scheme, _, credentials = authorization.partition(" ")
    token = credentials.strip()
    return token if scheme.lower() == "bearer" and token else None


def require_scopes(tokens: Tokens) -> Guard:
    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        needed = scope_of(handler)
        if needed is None:
            return  # health, metrics, documentation
        presented = connection.headers.getall("authorization", [])
        if len(presented) > 1:
            # Two tokens, perhaps of two scopes: which one a proxy keeps is anyone's
            # guess, so neither counts (as two Idempotency-Key headers).
            raise NotAuthorizedException(
                "the Authorization header is given more than once",
                headers={"WWW-Authenticate": 'Bearer realm="balance", error="invalid_request"'},
            )
        credentials = bearer(presented[0]) if presented else None
        if credentials is None:
            raise NotAuthorizedException(
                "an Authorization: Bearer token is required",
                headers={"WWW-Authenticate": 'Bearer realm="balance"'},
            )
        granted = tokens.scopes(credentials)
        if granted is None:
            raise NotAuthorizedException(
                "the bearer token is not valid",
                headers={"WWW-Authenticate": 'Bearer realm="balance", error="invalid_token"'},
            )
        if needed not in granted:
            raise PermissionDeniedException(f"this token lacks the '{needed}' scope")

    return guard


def check_every_route_has_a_scope(handlers: Iterable[tuple[str, BaseRouteHandler]]) -> None:
    """Fail closed: a /v1 route that forgot its scope would be open to any token."""
    for path, handler in handlers:
        if path.startswith("/v1") and scope_of(handler) not in SCOPES:
            raise RuntimeError(f"{path} declares no scope (opt=READ, WRITE, REPORT or ADMIN)")
