"""The only wiring: adapters to use cases, chosen by configuration."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial

from dependency_injector import containers, providers
from litestar.types import ASGIApp

from adapters.csv.revenue import CsvRevenueReport
from adapters.memory.reports import InMemoryRevenueReports
from adapters.memory.store import InMemoryMovementBatch, InMemoryStore, InMemoryUnitOfWork
from adapters.postgres.engine import create_engine, database_status
from adapters.postgres.movements import PostgresMovementBatch
from adapters.postgres.reports import PostgresRevenueReports
from adapters.postgres.revisions import head_revision
from adapters.postgres.session import Engine
from adapters.postgres.uow import PostgresUnitOfWork
from application.ports import DatabaseStatus
from application.runner import MoneyMovements
from application.sweeper import Sweeper
from entrypoints.http import metrics
from entrypoints.http.app import create_app
from entrypoints.http.auth import Tokens
from entrypoints.http.controllers import Services
from entrypoints.http.metrics import MovementMetrics
from entrypoints.http.problems import stored_refusal
from entrypoints.settings import Settings

logger = logging.getLogger("balance")


async def always_ready() -> DatabaseStatus:
    return DatabaseStatus("memory", "in-process")


class MemoryAdapters(containers.DeclarativeContainer):
    store = providers.Singleton(InMemoryStore)
    unit_of_work = providers.Factory(InMemoryUnitOfWork, store=store)
    movement_batch = providers.Factory(InMemoryMovementBatch, store=store)
    reports = providers.Factory(
        InMemoryRevenueReports,
        transactions=store.provided.transactions,
        names=store.provided.services,
    )
    readiness = providers.Object(always_ready)


class PostgresAdapters(containers.DeclarativeContainer):
    config = providers.Configuration()
    engine = providers.Singleton(
        create_engine,
        url=config.database_url,
        pool_size=config.pool_size,
        pooler=config.pooler,
    )
    unit_of_work = providers.Factory(PostgresUnitOfWork, engine=engine)
    movement_batch = providers.Factory(PostgresMovementBatch, engine=engine)
    reports = providers.Factory(PostgresRevenueReports, engine=engine)
    readiness = providers.Singleton(
        partial, database_status, engine, providers.Singleton(head_revision)
    )


class Container(containers.DeclarativeContainer):
    config = providers.Configuration()
    memory = providers.Container(MemoryAdapters)
    postgres = providers.Container(PostgresAdapters, config=config)
    unit_of_work = providers.Selector(
        config.store, memory=memory.unit_of_work, postgres=postgres.unit_of_work
    )
    movement_batch = providers.Selector(
        config.store, memory=memory.movement_batch, postgres=postgres.movement_batch
    )
    reports = providers.Selector(config.store, memory=memory.reports, postgres=postgres.reports)
    readiness = providers.Selector(
        config.store, memory=memory.readiness, postgres=postgres.readiness
    )
    # One batcher a worker: as many batches in flight as the pool has connections.
    movements = providers.Singleton(
        MoneyMovements,
        store=movement_batch.provider,
        max_batch=config.max_batch,
        max_in_flight=config.in_flight,
        max_wait=config.max_wait_seconds,
        observer=providers.Singleton(MovementMetrics),
        refused=providers.Object(stored_refusal),
    )
    sweeper = providers.Singleton(
        Sweeper,
        uow=unit_of_work.provider,
        movements=movements,
        overdue=providers.Object(metrics.overdue),
        interval=config.sweep_seconds,
    )
    services = providers.Singleton(
        Services,
        movements=movements,
        uow=unit_of_work.provider,
        reports=reports.provider,
        report_writer=providers.Singleton(CsvRevenueReport),
        readiness=readiness,
    )


def build_container(settings: Settings) -> Container:
    container = Container()
    container.config.from_dict(
        {
            "store": settings.store,
            "database_url": settings.database_url,
            "pool_size": settings.pool_size,
            "in_flight": min(settings.in_flight, settings.pool_size),
            "max_batch": settings.max_batch,
            "max_wait_seconds": settings.max_wait_ms / 1000,
            "sweep_seconds": settings.sweep_ms / 1000,
            "pooler": settings.pooler,
        }
    )
    return container


def build_app(settings: Settings, container: Container | None = None) -> ASGIApp:
    """One worker's app: its resources (the engine) open at start-up, close at shutdown."""
    container = container or build_container(settings)

    sweeping: list[asyncio.Task[None]] = []
    engine: Engine | None = None  # the worker's pool, once started

    async def start() -> None:
        nonlocal engine
        metrics.relayed(settings.broker_url is not None)
        if settings.store == "postgres":
            engine = container.postgres.engine()
            metrics.pool_max(settings.pool_size)
        if settings.sweep_ms:
            sweeping.append(asyncio.create_task(container.sweeper().run()))

    async def stop() -> None:
        for task in sweeping:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if settings.store == "postgres":
            await container.postgres.engine().dispose()

    def services() -> Services:
        return container.services()

    def pool_in_use() -> int:
        """Read after every request: the engine itself, not the container's provider."""
        return engine.checked_out() if engine is not None else 0

    tokens = Tokens.of(settings.api_tokens) if settings.api_tokens else None
    if tokens is None:
        logger.warning("BALANCE_API_TOKENS is not set: the API is open to anyone who can reach it")
    return create_app(
        services,
        on_startup=[start],
        on_shutdown=[stop],
        tokens=tokens,
        pool_in_use=pool_in_use if settings.store == "postgres" else None,
        body_seconds=settings.body_timeout_ms / 1000,
    )
