"""`balance serve | migrate | report | prune-keys | openapi`: the once-only work happens here,
before workers start."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from datetime import timedelta

from adapters.embedded.server import EmbeddedPostgres
from adapters.postgres.engine import grant_app_role, migrate
from adapters.postgres.retention import prune_idempotency_keys
from application.errors import InvalidParameter
from application.reports import ReportPeriod, revenue_report
from entrypoints.container import build_container
from entrypoints.http.app import openapi_document
from entrypoints.http.observe import configure_logging, granian_logging
from entrypoints.settings import ConfigError, Settings

logger = logging.getLogger("balance")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="balance", description="User balance service")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="migrate, then serve HTTP (granian)")
    commands.add_parser("migrate", help="bring the database schema to the newest version")
    report = commands.add_parser("report", help="a month's revenue CSV on stdout")
    report.add_argument("month", help="YYYY-MM, e.g. 2022-11")
    prune = commands.add_parser(
        "prune-keys", help="forget idempotency keys older than --days (run as the schema owner)"
    )
    prune.add_argument("--days", type=_days, required=True, help="retention window, at least 1")
    document = commands.add_parser("openapi", help="the OpenAPI document (JSON) on stdout")
    document.add_argument(
        "--secured", action="store_true", help="as served with BALANCE_API_TOKENS set"
    )
    args = parser.parse_args(argv)
    if args.command == "openapi":
        sys.stdout.buffer.write(openapi_document(secured=args.secured))
        return 0
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"balance: configuration error: {error}", file=sys.stderr)  # noqa: T201
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:  # before any database work: a bad month starts nothing
        period = ReportPeriod.parse_month(args.month) if args.command == "report" else None
    except InvalidParameter as error:
        print(f"balance: {error}", file=sys.stderr)  # noqa: T201
        return 2
    embedded = None
    if settings.store == "postgres" and settings.database_url is None:
        embedded = EmbeddedPostgres(settings.data_dir)
        os.environ["DATABASE_URL"] = embedded.start()
        settings = Settings.from_env()
    try:
        if settings.database_url is not None and (settings.migrate or args.command == "migrate"):
            asyncio.run(migrate(settings.database_url))
            if args.command == "migrate" and settings.app_role is not None:
                asyncio.run(grant_app_role(settings.database_url, settings.app_role))
                logger.info("granted the service's privileges to role %s", settings.app_role)
        if args.command == "serve":
            serve(settings)
        elif period is not None:
            print_report(settings, period)
        elif args.command == "prune-keys" and settings.database_url is not None:
            count = asyncio.run(prune_idempotency_keys(settings.database_url, args.days))
            logger.info("forgot %d idempotency keys older than %d days", count, args.days.days)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _days(text: str) -> timedelta:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("must be a whole number of days, at least 1")
    return timedelta(days=int(text))


def print_report(settings: Settings, period: ReportPeriod) -> None:
    async def write() -> None:
        container = build_container(settings)
        try:
            lines = await revenue_report(period, container.reports)
            for chunk in container.services().report_writer.render(lines):
                sys.stdout.write(chunk)
        finally:
            if settings.store == "postgres":
                await container.postgres.engine().dispose()

    asyncio.run(write())


def serve(settings: Settings) -> None:
    logger.info(
        "serving on http://%s:%d (%s store, %d workers); docs at /docs",
        settings.host,
        settings.port,
        settings.store,
        settings.workers,
    )
    # Every worker counts into its own files here; /metrics sums them.
    metrics_dir = tempfile.mkdtemp(prefix="balance-metrics-")
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
    try:
        _granian(settings)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _granian(settings: Settings) -> None:
    from granian import Granian  # noqa: PLC0415 - only the serving process needs it
    from granian.constants import Interfaces  # noqa: PLC0415

    Granian(
        "entrypoints.asgi:app",
        factory=True,
        address=settings.host,
        port=settings.port,
        workers=settings.workers,
        interface=Interfaces.ASGI,
        # A worker that dies (OOM kill, segfault) is replaced; its clients retry.
        respawn_failed_workers=True,
        respawn_interval=0.5,
        # SIGTERM: stop accepting, let in-flight requests finish, then stop workers.
        workers_kill_timeout=settings.shutdown_timeout,
        log_dictconfig=granian_logging(settings.log_level, settings.log_format),
    ).serve()


if __name__ == "__main__":
    sys.exit(main())
