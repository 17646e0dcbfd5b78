"""The Litestar application: routes, error mapping, OpenAPI at /docs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from litestar import Litestar, get
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.response import Redirect

from entrypoints.http.controllers import ROUTES, Services
from entrypoints.http.health import HEALTH_ROUTES
from entrypoints.http.openapi import finish
from entrypoints.http.problems import EXCEPTION_HANDLERS
from entrypoints.http.reports import REPORT_ROUTES

MAX_BODY_BYTES = 64 * 1024

Hook = Callable[[], Awaitable[None]]


@get("/docs", include_in_schema=False)
async def docs() -> Redirect:
    return Redirect("/schema/swagger")


def create_app(
    services: Callable[[], Services],
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
) -> Litestar:
    """`services` is asked once per request; the container makes it a singleton."""
    app = Litestar(
        route_handlers=[*ROUTES, *REPORT_ROUTES, *HEALTH_ROUTES, docs],
        dependencies={"services": Provide(services, sync_to_thread=False, use_cache=True)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=MAX_BODY_BYTES,
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        openapi_config=OpenAPIConfig(
            title="Balance service",
            version="1.0.0",
            description="User balances on a double-entry ledger. Amounts are decimal rubles.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin(path="/swagger")],
        ),
    )
    finish(app)
    return app
