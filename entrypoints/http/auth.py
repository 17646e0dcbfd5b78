"""Bearer tokens with scopes (BALANCE_API_TOKENS). Every /v1 route names the scope it
needs in its `opt`; an app with a /v1 route that names none refuses to start. A named
token's caller is left in the request's scope (`CALLER`) for the ledger and the
access log to record."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from entrypoints.settings import SCOPES, ApiToken

READ, WRITE, REPORT, ADMIN = ({"scope": s} for s in SCOPES)
SCHEME = "BearerToken"
CALLER = "balance.caller"
"""The key of the request's ASGI scope that holds the caller's name, once the guard
let a named token in."""


@dataclass(frozen=True, slots=True)
class Tokens:
    """token -> scopes and caller. Looked up in constant time: every token is compared."""

    grants: tuple[tuple[bytes, ApiToken], ...]

    @classmethod
    def of(cls, grants: Iterable[ApiToken]) -> Tokens:
        return cls(tuple((grant.token.encode(), grant) for grant in grants))

    def grant(self, presented: str) -> ApiToken | None:
        candidate = presented.encode()
        found = None
        for token, grant in self.grants:
            if hmac.compare_digest(token, candidate):
                found = grant
        return found


def caller_of(scope: Any) -> str | None:
    """The name of the caller a request came from: None with no token, an unnamed one,
    or no auth."""
    caller = scope.get(CALLER)
    return caller if isinstance(caller, str) else None


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
        granted = tokens.grant(credentials)
        if granted is None:
            raise NotAuthorizedException(
                "the bearer token is not valid",
                headers={"WWW-Authenticate": 'Bearer realm="balance", error="invalid_token"'},
            )
        if granted.caller is not None:
            connection.scope[CALLER] = granted.caller  # type: ignore[literal-required]
        if needed not in granted.scopes:
            raise PermissionDeniedException(f"this token lacks the '{needed}' scope")

    return guard


def check_every_route_has_a_scope(handlers: Iterable[tuple[str, BaseRouteHandler]]) -> None:
    """Fail closed: a /v1 route that forgot its scope would be open to any token."""
    for path, handler in handlers:
        if path.startswith("/v1") and scope_of(handler) not in SCOPES:
            raise RuntimeError(f"{path} declares no scope (opt=READ, WRITE, REPORT or ADMIN)")
