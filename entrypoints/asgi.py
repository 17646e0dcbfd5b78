"""The ASGI factory granian's workers call: settings come from the environment."""

import gc

from litestar.types import ASGIApp

from entrypoints.container import build_app
from entrypoints.http.observe import configure_logging
from entrypoints.settings import Settings

# Requests leave no reference cycles (a batch is freed as it ends; a contract test
# checks), so the collector finds nothing: its young-generation pass only walks the
# objects of requests in flight, 700 allocations apart by default, 13-25 µs of CPU a
# movement. Every 10,000: about 1 µs (bench/RESULTS.md).
YOUNG_THRESHOLD = 10_000


def app() -> ASGIApp:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    application = build_app(settings)
    # What a worker builds before its first request (modules, the app, its routes and
    # schemas) lives as long as the worker: frozen, the collector no longer walks it.
    # Unfrozen, every full collection walked about 120,000 objects and stopped the
    # worker for about 100 ms, the p99 of every route at 64 connections (bench/RESULTS.md).
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)
    return application
