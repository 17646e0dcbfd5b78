"""Liveness and readiness for orchestrators and load balancers."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec

from entrypoints.http.controllers import ServicesDep
from entrypoints.http.problems import PROBLEM_JSON, problem
from entrypoints.http.schemas import HealthStatus, Problem

_READY = msgspec.json.encode(HealthStatus("ready"))


@get(
    "/health/live",
    operation_id="getLiveness",
    summary="Is the process alive",
    tags=["health"],
    sync_to_thread=False,
)
def live() -> HealthStatus:
    """The process answers."""
    return HealthStatus("ok")


@get(
    "/health/ready",
    operation_id="getReadiness",
    summary="Is the service ready to serve",
    tags=["health"],
    responses={
        200: ResponseSpec(HealthStatus, description="Ready to serve", generate_examples=False),
        503: ResponseSpec(
            Problem,
            media_type=PROBLEM_JSON,
            description="Not ready, and why",
            generate_examples=False,
        ),
    },
)
async def ready(services: ServicesDep) -> Response[bytes]:
    """The database answers and its schema is the one this code needs; 503 otherwise."""
    trouble = await services.readiness()
    if trouble is not None:
        return problem(503, "not-ready", trouble, headers={"Retry-After": "5"})
    return Response(_READY, media_type="application/json")


HEALTH_ROUTES = [live, ready]
