"""Liveness and readiness for orchestrators and load balancers."""

from __future__ import annotations

from litestar import Response, get

from entrypoints.http.controllers import ServicesDep
from entrypoints.http.problems import problem


@get("/health/live", tags=["health"], sync_to_thread=False)
def live() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@get("/health/ready", tags=["health"])
async def ready(services: ServicesDep) -> Response[bytes] | dict[str, str]:
    """The database answers and its schema is the one this code needs; 503 otherwise."""
    trouble = await services.readiness()
    if trouble is not None:
        return problem(503, "not-ready", trouble, headers={"Retry-After": "5"})
    return {"status": "ready"}


HEALTH_ROUTES = [live, ready]
