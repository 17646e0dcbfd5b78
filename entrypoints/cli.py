"""`balance serve | migrate | relay | report | prune-keys | prune-events | verify | openapi |
asyncapi`:
the once-only work happens here, before workers start."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import timedelta

import asyncpg

from adapters.embedded.server import EmbeddedPostgres
from adapters.postgres.audit import Audit, SchemaBehind, audit
from adapters.postgres.engine import grant_app_role, migrate, schema_too_new
from adapters.postgres.retention import prune_events, prune_idempotency_keys
from adapters.postgres.revisions import SchemaTooNew, head_revision
from application.errors import InvalidParameter
from application.reports import ReportPeriod, revenue_report
from entrypoints.asyncapi import asyncapi_document
from entrypoints.container import build_container
from entrypoints.http.app import openapi_document
from entrypoints.http.observe import configure_logging, granian_logging
from entrypoints.relay import run_relay
from entrypoints.settings import ConfigError, Settings

logger = logging.getLogger("balance")


def _parser() -> argparse.ArgumentParser:
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
    commands.add_parser("relay", help="publish the outbox's events to BROKER_URL (RabbitMQ)")
    events = commands.add_parser(
        "prune-events", help="forget events the broker confirmed, older than --days"
    )
    events.add_argument("--days", type=_days, required=True, help="retention window, at least 1")
    verify = commands.add_parser(
        "verify",
        help="check the ledger's invariants in one snapshot (exit 1 if one is broken);"
        " best run on a standby",
    )
    verify.add_argument(
        "--examples", type=_count, default=5, help="subjects named per broken invariant"
    )
    commands.add_parser("asyncapi", help="the AsyncAPI document of the events (YAML) on stdout")
    document = commands.add_parser("openapi", help="the OpenAPI document (JSON) on stdout")
    document.add_argument(
        "--secured", action="store_true", help="as served with BALANCE_API_TOKENS set"
    )
    return parser


SIGPIPE_EXIT = 128 + 13
"""A command's exit when the reader of its output went away (`balance report ... |
head`), as a Unix tool's killed by SIGPIPE: not 0, 1 or 2, which say what it found."""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader is done: no traceback, and nothing more written at exit either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_EXIT


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("openapi", "asyncapi"):  # the documents: no settings, no database
        if args.command == "openapi":
            sys.stdout.buffer.write(openapi_document(secured=args.secured))
        else:
            sys.stdout.write(asyncapi_document())
        return 0
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"balance: configuration error: {error}", file=sys.stderr)  # noqa: T201
        return 2
    # A report's stdout is the CSV, its stderr silent when all is well: only warnings
    # and errors, unless LOG_LEVEL asks for more.
    quiet = args.command == "report" and "LOG_LEVEL" not in os.environ
    configure_logging("WARNING" if quiet else settings.log_level, settings.log_format)
    if (problem := _cannot_start(args, settings)) is not None:
        print(f"balance: {problem}", file=sys.stderr)  # noqa: T201
        return 2
    period = ReportPeriod.parse_month(args.month) if args.command == "report" else None
    embedded = None
    if settings.store == "postgres" and settings.database_url is None:
        embedded = EmbeddedPostgres(settings.data_dir)
        os.environ["DATABASE_URL"] = embedded.start()
        settings = Settings.from_env()
    try:
        if (problem := _prepare_database(args, settings)) is not None:
            print(f"balance: {problem}", file=sys.stderr)  # noqa: T201
            return 2
        if args.command == "verify" and settings.database_url is not None:
            return verify(settings.database_url, args.examples)
        _run(args, settings, period)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _prepare_database(args: argparse.Namespace, settings: Settings) -> str | None:
    """Migrate, as the command and BALANCE_MIGRATE ask; None, or why this code must not
    run on the database: its schema is a later version's that needs newer code
    (migrations/README.md, rule 5). Not migrating, `serve` still looks (a relay looks
    in its first step, and every 30 s after)."""
    url = settings.database_url
    if url is None:
        return None
    # verify reads only (a standby too): it migrates nothing.
    migrating = args.command == "migrate" or (settings.migrate and args.command != "verify")
    if not migrating:
        if args.command != "serve":
            return None
        return asyncio.run(schema_too_new(url, pooler=settings.pooler))
    try:
        # A database started beside this (compose, a fresh container) may still be
        # initialising: waited for up to DB_WAIT seconds.
        asyncio.run(migrate(url, wait=settings.db_wait))
    except SchemaTooNew as error:  # a later version's schema, past this code
        return str(error)
    if args.command == "migrate" and settings.app_role is not None:
        asyncio.run(grant_app_role(url, settings.app_role))
        logger.info("granted the service's privileges to role %s", settings.app_role)
    return None


def _run(args: argparse.Namespace, settings: Settings, period: ReportPeriod | None) -> None:
    if args.command == "serve":
        serve(settings)
    elif period is not None:
        print_report(settings, period)
    elif args.command == "relay":
        if (problem := asyncio.run(run_relay(settings))) is not None:
            print(f"balance: {problem}", file=sys.stderr)  # noqa: T201
            raise SystemExit(2)  # serve's workers go on, unready; a newer relay publishes
    elif args.command == "prune-events" and settings.database_url is not None:
        gone = asyncio.run(prune_events(settings.database_url, args.days))
        logger.info("forgot %d sent events older than %d days", gone, args.days.days)
    elif args.command == "prune-keys" and settings.database_url is not None:
        count = asyncio.run(prune_idempotency_keys(settings.database_url, args.days))
        logger.info("forgot %d idempotency keys older than %d days", count, args.days.days)


def _cannot_start(args: argparse.Namespace, settings: Settings) -> str | None:
    """Why the command would fail, found before any database work: a bad month, a
    relay without a broker or a port taken start nothing."""
    if args.command == "relay" and settings.broker_url is None:
        return "relay needs BROKER_URL (amqp://...)"
    if args.command == "verify" and settings.store != "postgres":
        return "verify reads a PostgreSQL ledger (BALANCE_STORE=postgres)"
    if args.command == "report":
        try:
            ReportPeriod.parse_month(args.month)
        except InvalidParameter as error:
            return str(error)
    if args.command == "serve" and (taken := _address_taken(settings.host, settings.port)):
        return f"cannot serve on {settings.host}:{settings.port}: {taken}"
    return None


def _address_taken(host: str, port: int) -> str | None:
    """Why the address cannot be served on, or None. Granian binds it with SO_REUSEPORT,
    so a second server on a port one already serves (an old one left running, two
    `make run`s) started without a word, and the two shared the requests; a port
    another program holds failed with a trace of a hundred lines, after the database
    was started. Bound here without SO_REUSEPORT, a port anyone listens on is refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as error:
        return f"no such address ({error})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        try:
            probe.bind(address)
            probe.listen()
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return "the port is in use (another balance serve, or another program); set PORT"
            return str(error)
    return None


def _days(text: str) -> timedelta:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("must be a whole number of days, at least 1")
    return timedelta(days=int(text))


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 1000")
    return int(text)


def verify(url: str, examples: int) -> int:
    try:
        found = asyncio.run(audit(url, examples))
    except (OSError, asyncpg.PostgresError) as error:
        print(f"balance: verify could not read the ledger: {error}", file=sys.stderr)  # noqa: T201
        return 2
    except SchemaBehind as error:
        print(f"balance: verify: {error}", file=sys.stderr)  # noqa: T201
        return 2
    return print_audit(found)


def print_audit(found: Audit) -> int:
    """One line per invariant, with the subjects that break it: 0 if all hold, else 1."""
    print(  # noqa: T201
        f"ledger at {found.snapshot_at}: {found.accounts} accounts, "
        f"{found.transactions} transactions, {found.entries} entries (schema {found.schema})"
    )
    if found.schema_ahead:
        print(  # noqa: T201
            f"note    the schema is a later version's: invariants newer than this code's"
            f" ({head_revision()}) are not checked"
        )
    for finding in found.findings:
        if finding.broken == 0:
            print(f"ok      {finding.check}")  # noqa: T201
            continue
        print(f"BROKEN  {finding.check}: {finding.broken}")  # noqa: T201
        for subject, wrong in finding.examples:
            print(f"          {subject}: {wrong}")  # noqa: T201
    return 0 if found.holds else 1


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
        "serving on http://%s:%d (%s store, %d worker%s); docs at /docs",
        settings.host,
        settings.port,
        settings.store,
        settings.workers,
        "" if settings.workers == 1 else "s",
    )
    # Every worker counts into its own files here; /metrics sums them. A directory
    # given in PROMETHEUS_MULTIPROC_DIR is the caller's to keep or clear.
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    metrics_dir = given or tempfile.mkdtemp(prefix="balance-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    relay = _start_relay(settings)
    try:
        _granian(settings)
    finally:
        if relay is not None:
            relay.terminate()
            try:
                relay.wait(timeout=settings.shutdown_timeout)
            except subprocess.TimeoutExpired:
                relay.kill()
        if given is None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _start_relay(settings: Settings) -> subprocess.Popen[bytes] | None:
    """With a broker (and RELAY not off), a relay process beside the workers: one of
    the relays of every server publishes at a time (a lease in the database)."""
    if settings.store != "postgres" or settings.broker_url is None or not settings.relay:
        return None
    logger.info("starting the event relay to the broker")
    env = {**os.environ, "BALANCE_MIGRATE": "0"}  # serve migrated already
    return subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "relay"], env=env)


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
