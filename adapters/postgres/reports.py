"""Service catalogue and revenue totals on PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert

from adapters.postgres.session import Engine, Session
from adapters.postgres.sql import Writes, compile_sql
from adapters.postgres.tables import TimestampTZ, entries, services
from application.ports import RevenueReports, ServiceCatalogue

_named = insert(services).values(service_id=bindparam("service_id"), name=bindparam("name"))
_NAME = compile_sql(
    _named.on_conflict_do_update(
        index_elements=[services.c.service_id],
        set_={"name": _named.excluded.name, "updated_at": func.clock_timestamp()},
    )
)
_ALL = compile_sql(select(services.c.service_id, services.c.name).order_by(services.c.service_id))


REPORT_TIMEOUT = 600.0
"""Seconds a revenue report's query may take (engine.COMMAND_TIMEOUT bounds the rest)."""


class PostgresServiceCatalogue(ServiceCatalogue):
    def __init__(self, work: Writes) -> None:
        self._work = work

    async def name(self, service_id: int, name: str) -> None:
        await self._work.begin()
        await self._work.db.run(_NAME, service_id=service_id, name=name)

    async def all(self) -> list[tuple[int, str]]:
        return [(row["service_id"], row["name"]) for row in await self._work.db.rows(_ALL)]


# Recognized revenue per service: an index-only scan of entries_revenue_by_date,
# aggregated first, then named, so one row per service leaves the database however
# many recognitions the period holds.
_earned = (
    select(entries.c.service_id, func.sum(entries.c.amount).label("total"))
    .where(
        entries.c.account == "revenue",
        entries.c.created_at >= bindparam("since", type_=TimestampTZ),
        entries.c.created_at < bindparam("until", type_=TimestampTZ),
    )
    .group_by(entries.c.service_id)
    .subquery()
)
_TOTALS = compile_sql(
    select(_earned.c.service_id, services.c.name, _earned.c.total).outerjoin_from(
        _earned, services, services.c.service_id == _earned.c.service_id
    ),
    # A period of years reads every recognition in it (0.6 s a million): not the
    # 20 s a movement's statement may take.
    timeout=REPORT_TIMEOUT,
)


class PostgresRevenueReports(RevenueReports):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def totals(self, since: datetime, until: datetime) -> list[tuple[int, str | None, int]]:
        """One statement, so one snapshot (READ COMMITTED): a report taken during
        traffic adds up to one moment's ledger. Outside a transaction, as every read
        is: there asyncpg prepares a statement again when a migration changed the type
        of a column it returns; inside one it fails (InvalidCachedStatementError, a
        500 in a rolling deploy)."""
        async with Session(self._engine) as session:
            rows = await session.db.rows(_TOTALS, since=since, until=until)
        return [(r["service_id"], r["name"], int(r["total"])) for r in rows]
