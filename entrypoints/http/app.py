"""The Litestar application: routes, error mapping, OpenAPI at /docs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import msgspec
from litestar import Litestar, Response, get
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.response import Redirect
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, ControllerRouterHandler, Middleware
from swagger_ui_bundle import swagger_ui_path

from entrypoints.http import metrics
from entrypoints.http.auth import (
    SCHEME,
    Tokens,
    check_every_route_has_a_scope,
    require_scopes,
)
from entrypoints.http.batches import BATCH_ROUTES
from entrypoints.http.controllers import ROUTES, Services, ServicesDep, before_request
from entrypoints.http.health import HEALTH_ROUTES
from entrypoints.http.observe import observe
from entrypoints.http.openapi import finish
from entrypoints.http.problems import EXCEPTION_HANDLERS
from entrypoints.http.reports import REPORT_ROUTES

VERSION = "1.0.0"

MAX_BODY_BYTES = 64 * 1024
DOCS_ASSETS = "/docs/assets"


def swagger_ui() -> SwaggerRenderPlugin:
    """Swagger UI from a pinned wheel, served by the service itself: /docs works where
    no CDN can be reached (and no CDN is trusted to run scripts beside the API)."""
    return SwaggerRenderPlugin(
        path="/swagger",
        js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{DOCS_ASSETS}/favicon-32x32.png'>",
    )


Hook = Callable[[], Awaitable[None]]


@get("/docs", include_in_schema=False)
async def docs() -> Redirect:
    return Redirect("/schema/swagger")


@get(
    "/metrics",
    operation_id="getMetrics",
    summary="Prometheus metrics",
    tags=["health"],
    media_type="text/plain",
)
async def prometheus(services: ServicesDep) -> Response[bytes]:
    """Prometheus text format: requests, latency, pool, money movements, replays, refusals,
    and whether the service is ready (asked of the database at every scrape)."""
    status = await services.readiness()
    metrics.ready(status.problem is None)
    if status.synchronous is not None:
        metrics.synchronous(status.synchronous)
    if status.events is not None:
        metrics.outbox(status.events.unsent, status.events.oldest_unsent_seconds)
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


def create_app(
    services: Callable[[], Services],
    *,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    tokens: Tokens | None = None,
    pool_in_use: Callable[[], int] | None = None,
    middleware: Sequence[Middleware] = (),
    body_seconds: float = 10.0,
) -> ASGIApp:
    """The service: every request observed (request id, access log, metrics), then
    served by Litestar, money routes included.

    `services` is asked once per request; the container makes it a singleton.
    With `tokens`, every /v1 route needs a bearer token holding its scope.
    `middleware` is added to Litestar's own and runs on every route. A request whose
    body stops coming for `body_seconds` is answered 408."""
    app = create_litestar(services, on_startup, on_shutdown, tokens, middleware)
    return observe(pool_in_use, body_seconds)(app)


def openapi_document(secured: bool) -> bytes:
    """The document /schema/openapi.json serves, with or without tokens configured."""

    def no_services() -> Services:
        raise RuntimeError("the document needs no services")

    tokens = Tokens(()) if secured else None
    document = create_litestar(no_services, tokens=tokens).openapi_schema.to_schema()
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


def create_litestar(
    services: Callable[[], Services],
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    tokens: Tokens | None = None,
    middleware: Sequence[Middleware] = (),
    *,
    money_first: bool = True,
) -> Litestar:
    """Every route, documented at /docs. `money_first`: the money routes that can are
    answered by a before-request hook (controllers.before_request); without it, every
    route's arguments are extracted by Litestar from its handler's signature."""
    handlers: list[ControllerRouterHandler] = [
        *ROUTES,
        *BATCH_ROUTES,
        *REPORT_ROUTES,
        *HEALTH_ROUTES,
        docs,
        prometheus,
    ]
    query_names: dict[int, dict[str, bool]] = {}  # filled once the app is built
    assets = create_static_files_router(
        DOCS_ASSETS, directories=[swagger_ui_path], include_in_schema=False
    )
    app = Litestar(
        route_handlers=[*handlers, assets],
        guards=[require_scopes(tokens)] if tokens is not None else [],
        middleware=list(middleware),
        logging_config=None,  # configure_logging owns the root logger (JSON lines)
        dependencies={"services": Provide(services, sync_to_thread=False, use_cache=True)},
        before_request=before_request(services, query_names, money_first=money_first),
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=MAX_BODY_BYTES,
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        openapi_config=OpenAPIConfig(
            title="Balance service",
            version=VERSION,
            description="User balances on a double-entry ledger. Amounts are decimal rubles.",
            path="/schema",
            render_plugins=[swagger_ui()],
            components=Components(
                security_schemes={
                    SCHEME: SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description=(
                            "A token from BALANCE_API_TOKENS (scopes read, write, report,"
                            " admin); a named token's caller is recorded with what it does"
                            " (`caller` in statements and events)"
                        ),
                    )
                }
            ),
        ),
    )
    check_every_route_has_a_scope(
        (route.path, handler)
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        if not _litestars_own(handler)
    )
    query_names.update(api_query_names(app))
    finish(app, secured=tokens is not None)
    return app


def api_query_names(app: Litestar) -> dict[int, dict[str, bool]]:
    """Each /v1 route's query parameters as Litestar reads them (the names its handler's
    arguments are extracted by), and whether each may be given more than once (a
    list), by the handler's id."""
    names: dict[int, dict[str, bool]] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/v1/"):
            continue
        for handler, kwargs_model in route.route_handler_map.values():
            if _litestars_own(handler):
                continue
            names[id(handler)] = {
                parameter.field_alias: parameter.is_sequence
                for parameter in kwargs_model.expected_query_params
            }
    return names


def _litestars_own(handler: object) -> bool:
    """The OPTIONS handler Litestar adds to every route (it answers with the route's
    methods): neither scoped nor checked for query parameters."""
    return getattr(handler, "http_methods", None) == {"OPTIONS"}
