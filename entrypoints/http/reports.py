"""The service catalogue and the revenue reports for accounting."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Annotated

from litestar import get, post, put
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.response import Stream

from application.errors import InvalidParameter
from application.reports import ReportPeriod, revenue_report
from application.services import NameService, list_services, name_service
from entrypoints.http.auth import READ, REPORT, WRITE
from entrypoints.http.controllers import PathId, ServicesDep, openapi_responses
from entrypoints.http.decoding import StrictJSON
from entrypoints.http.schemas import (
    ReportLink,
    ReportRequest,
    ServiceList,
    ServiceNameRequest,
    ServiceOut,
)

# Years 2000..9998, as ReportPeriod.month takes them; months 01..12.
MONTH_CSV = r"^(2[0-9]{3}|[3-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-(0[1-9]|1[0-2])\.csv$"


@put(
    "/v1/services/{service_id:int}",
    dto=StrictJSON[ServiceNameRequest],
    return_dto=None,
    status_code=200,
    responses=openapi_responses(200, ServiceOut, "The service's name", 404),
    operation_id="nameService",
    summary="Name or rename a service",
    tags=["services"],
    opt=WRITE,
)
async def put_service(
    service_id: PathId, data: JSONBody[ServiceNameRequest], services: ServicesDep
) -> ServiceOut:
    """Name a service (or rename it); reports and statements show the name."""
    named = await name_service(NameService(service_id, data.name), services.uow)
    return ServiceOut(named.service_id, named.name)


@get(
    "/v1/services",
    operation_id="listServices",
    summary="List the named services",
    tags=["services"],
    opt=READ,
)
async def get_services(services: ServicesDep) -> ServiceList:
    return ServiceList(
        [ServiceOut(s.service_id, s.name) for s in await list_services(services.uow)]
    )


@post(
    "/v1/reports/revenue",
    dto=StrictJSON[ReportRequest],
    return_dto=None,
    responses=openapi_responses(201, ReportLink, "Where the month's report is"),
    operation_id="createRevenueReport",
    summary="Get the link to a month's revenue report",
    tags=["reports"],
    opt=REPORT,
)
async def post_revenue_report(data: JSONBody[ReportRequest]) -> ReportLink:
    """The link to a month's revenue CSV. The file is built on every read: never stale."""
    period = ReportPeriod.month(data.year, data.month)
    return ReportLink(f"/v1/reports/revenue/{period.label}.csv")


@get(
    "/v1/reports/revenue/{period:str}",
    media_type="text/csv",
    responses=openapi_responses(
        200,
        str,
        "service name;total, one row a service, sorted by name",
        media_type="text/csv",
    ),
    operation_id="getMonthlyRevenueReport",
    summary="Get a month's revenue report (CSV)",
    tags=["reports"],
    opt=REPORT,
)
async def get_monthly_revenue(
    period: Annotated[
        str,
        PathParameter(
            description="YYYY-MM.csv, years 2000..9998", schema_extra={"pattern": MONTH_CSV}
        ),
    ],
    services: ServicesDep,
) -> Stream:
    """The revenue per service for a month (UTC), e.g. /v1/reports/revenue/2022-11.csv."""
    month, dot, extension = period.rpartition(".")
    if not dot or extension != "csv":
        raise InvalidParameter("period", "must be YYYY-MM.csv, e.g. 2022-11.csv")
    return await _report(ReportPeriod.parse_month(month), services)


@get(
    "/v1/reports/revenue.csv",
    media_type="text/csv",
    responses=openapi_responses(
        200, str, "service name;total for the period", media_type="text/csv"
    ),
    operation_id="getRevenueReport",
    summary="Get the revenue report for a period (CSV)",
    tags=["reports"],
    opt=REPORT,
)
async def get_period_revenue(
    services: ServicesDep,
    first: Annotated[
        str, QueryParameter(name="from", format="date", description="YYYY-MM-DD, inclusive")
    ],
    end: Annotated[
        str, QueryParameter(name="to", format="date", description="YYYY-MM-DD, exclusive")
    ],
) -> Stream:
    """The revenue per service for any period of whole days (UTC), streamed."""
    return await _report(ReportPeriod.between(_day(first, "from"), _day(end, "to")), services)


def _day(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(field, "must be a date YYYY-MM-DD") from None


async def _report(period: ReportPeriod, services: ServicesDep) -> Stream:
    lines = await revenue_report(period, services.reports)
    writer = services.report_writer

    def chunks() -> Iterator[bytes]:
        for text in writer.render(lines):
            yield text.encode()

    filename = f"revenue-{period.label}.{writer.extension}"
    return Stream(
        chunks(),
        media_type=writer.media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


REPORT_ROUTES = [
    put_service,
    get_services,
    post_revenue_report,
    get_monthly_revenue,
    get_period_revenue,
]
