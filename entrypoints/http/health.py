"""Liveness and readiness for orchestrators and load balancers."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec

from entrypoints.http.controllers import ServicesDep
from entrypoints.http.problems import PROBLEM_JSON, problem
from entrypoints.http.schemas import DatabaseOut, EventsStatus, HealthStatus, Problem


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
    """The database answers, is the primary, and its schema is the one this code needs,
    naming the server written to; 503 otherwise (no primary reachable, for one). Also
    how the outbox stands and how its relay finds the broker: a broker down is not
    unreadiness (writes go on, events wait)."""
    status = await services.readiness()
    if status.problem is not None:
        return problem(503, "not-ready", status.problem, headers={"Retry-After": "5"})
    events = status.events
    body = HealthStatus(
        "ready",
        DatabaseOut(
            status.role, status.server, status.synchronous, status.schema, status.code_schema
        ),
        None
        if events is None
        else EventsStatus(
            events.unsent,
            round(events.oldest_unsent_seconds, 3),
            events.relay,
            events.broker or "no relay",
        ),
    )
    return Response(msgspec.json.encode(body), media_type="application/json")


HEALTH_ROUTES = [live, ready]
