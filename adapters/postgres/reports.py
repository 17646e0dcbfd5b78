"""Service catalogue and revenue totals on PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.errors import translate
from adapters.postgres.sql import Writes, compile_sql
from adapters.postgres.tables import entries, services
from application.ports import RevenueReports, ServiceCatalogue

_named = insert(services).values(service_id=bindparam("service_id"), name=bindparam("name"))
_NAME = compile_sql(
    _named.on_conflict_do_update(
        index_elements=[services.c.service_id],
        set_={"name": _named.excluded.name, "updated_at": func.clock_timestamp()},
    )
)
_ALL = compile_sql(select(services.c.service_id, services.c.name).order_by(services.c.service_id))


class PostgresServiceCatalogue(ServiceCatalogue):
    def __init__(self, work: Writes) -> None:
        self._work = work

    async def name(self, service_id: int, name: str) -> None:
        await self._work.begin()
        await self._work.db.run(_NAME, service_id=service_id, name=name)

    async def all(self) -> list[tuple[int, str]]:
        return [(row["service_id"], row["name"]) for row in await self._work.db.rows(_ALL)]


def _totals(since: datetime, until: datetime) -> Select[Any]:
    """Recognized revenue per service: an index-only scan of entries_revenue_by_date,
    aggregated first, then named, so one row per service leaves the database
    however many recognitions the period holds."""
    earned = (
        select(entries.c.service_id, func.sum(entries.c.amount).label("total"))
        .where(
            entries.c.account == "revenue",
            entries.c.created_at >= since,
            entries.c.created_at < until,
        )
        .group_by(entries.c.service_id)
        .subquery()
    )
    return select(earned.c.service_id, services.c.name, earned.c.total).outerjoin_from(
        earned, services, services.c.service_id == earned.c.service_id
    )


class PostgresRevenueReports(RevenueReports):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def totals(self, since: datetime, until: datetime) -> list[tuple[int, str | None, int]]:
        query = _totals(since, until)
        try:
            async with self._engine.connect() as connection:
                snapshot = await connection.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
                async with snapshot.begin():
                    rows = await snapshot.execute(query)
                    return [(r.service_id, r.name, int(r.total)) for r in rows]
        except Exception as error:
            raise (translate(error) or error) from error
