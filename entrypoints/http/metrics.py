"""Prometheus metrics. Under `balance serve` every granian worker writes to
PROMETHEUS_MULTIPROC_DIR (set before the workers start) and /metrics sums them,
so a scrape answered by any worker shows the whole server."""

from __future__ import annotations

import asyncio
import atexit
import bisect
import functools
import math
import os
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector


class _Metrics:
    def __init__(self) -> None:
        self.requests = Counter(
            "balance_http_requests", "HTTP requests answered", ["method", "route", "status"]
        )
        self.latency = Histogram(
            "balance_http_request_duration_seconds",
            "Time from the request's arrival to its answer",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.pool_in_use = Gauge(
            "balance_db_pool_connections_in_use",
            "Database connections checked out of the pool",
            multiprocess_mode="livesum",
        )
        self.pool_max = Gauge(
            "balance_db_pool_connections_max",
            "Database connections the pools may open (all workers)",
            multiprocess_mode="livesum",
        )
        self.ready = Gauge(
            "balance_ready",
            "1 when the database answers with the schema this code needs (checked at scrape)",
            multiprocess_mode="livemostrecent",
        )
        self.synchronous = Gauge(
            "balance_db_synchronous_standby",
            "1 when a commit waits for a synchronous standby, 0 when an acknowledged"
            " movement is on one server only (checked at scrape)",
            multiprocess_mode="livemostrecent",
        )
        # `caller`: the named token's (README, decision 53), "" for none: a series for
        # each configured name, not for anything a client sends.
        self.movements = Counter(
            "balance_money_movements", "Money movements applied", ["kind", "caller"]
        )
        self.moved = Counter(
            "balance_money_moved_rubles",
            "Sum of the amounts of money movements",
            ["kind", "caller"],
        )
        self.replays = Counter(
            "balance_idempotent_replays",
            "Requests answered from a stored Idempotency-Key answer",
            ["kind"],
        )
        self.refusals = Counter("balance_refusals", "Requests refused, by problem type", ["reason"])
        self.batch_size = Histogram(
            "balance_batch_size",
            "Money movement commands applied together in one database transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000),
        )
        self.expired = Counter(
            "balance_reservations_expired",
            "Reservations whose hold ran out: their money went back to available",
        )
        self.shed = Counter(
            "balance_requests_shed",
            "Money requests answered 503 without running: they waited in a worker's queue"
            " past BATCH_MAX_WAIT_MS",
        )
        self.overdue = Gauge(
            "balance_reservation_overdue_seconds",
            "Age of the oldest reservation past its expires_at and not yet expired",
            multiprocess_mode="livemax",
        )
        self.db_transactions = Counter(
            "balance_db_transactions",
            "Database transactions committed for money movements (one per batch)",
        )
        self.events_unsent = Gauge(
            "balance_events_unsent",
            "Events committed and not yet confirmed by the broker (read at scrape)",
            multiprocess_mode="livemostrecent",
        )
        self.events_oldest_unsent = Gauge(
            "balance_events_oldest_unsent_seconds",
            "Age of the oldest event not yet confirmed by the broker (0: none; read at scrape)",
            multiprocess_mode="livemostrecent",
        )
        self.events_published = Counter(
            "balance_events_published",
            "Events the relay published and the broker confirmed (rate: published a second)",
        )


_metrics: _Metrics | None = None


def _get() -> _Metrics:
    """Made at first use, in the worker: granian forks workers from the main process,
    and prometheus_client picks its multiprocess storage from the environment."""
    global _metrics  # noqa: PLW0603
    if _metrics is None:
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        _metrics = _Metrics()
    return _metrics


# The labelled series, found once per label values: `labels()` takes a lock and builds
# a key on every call.
@functools.cache
def _request_series(method: str, route: str, status: int) -> tuple[Any, Any]:
    m = _get()
    return m.requests.labels(method, route, str(status)), m.latency.labels(method, route)


@functools.cache
def _movement_series(kind: str, caller: str) -> tuple[Any, Any]:
    m = _get()
    return m.movements.labels(kind, caller), m.moved.labels(kind, caller)


class _Tally:
    """The requests answered in this turn of the event loop, added to the shared values
    once the turn ends: a multiprocess value's every change is a lock, a getpid() and
    a write to its file, three a request when each was counted and observed as it
    ended, about 3 µs. Per turn, a series' count is one change and its latency
    histogram one for the sum and one per bucket the turn's durations fell in."""

    def __init__(self) -> None:
        self._seconds: dict[tuple[str, str, int], list[float]] = {}
        self._pool: Callable[[], int] | None = None

    def add(
        self, method: str, route: str, status: int, seconds: float, pool: Callable[[], int] | None
    ) -> None:
        first = not self._seconds
        self._seconds.setdefault((method, route, status), []).append(seconds)
        self._pool = pool
        if first:  # the turn's first: add them all once it ends
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: at once
                self.flush()

    def flush(self) -> None:
        tallied, self._seconds = self._seconds, {}
        for (method, route, status), durations in tallied.items():
            count, latency = _request_series(method, route, status)
            count.inc(len(durations))
            observe_all(latency, durations)
        if self._pool is not None:
            pool_in_use(self._pool())


def observe_all(histogram: Any, amounts: list[float]) -> None:
    """What `histogram.observe` does for each amount, with one change a bucket: the
    histogram's sum and buckets are prometheus_client's (not public; the unit test
    compares with `observe`)."""
    bounds = histogram._upper_bounds
    falls = [0] * len(bounds)
    for amount in amounts:
        falls[bisect.bisect_left(bounds, amount)] += 1
    histogram._sum.inc(math.fsum(amounts))
    for bucket, fell in zip(histogram._buckets, falls, strict=True):
        if fell:
            bucket.inc(fell)


_tally = _Tally()
atexit.register(_tally.flush)  # a worker that stops mid-turn counts that turn too


def request_done(
    method: str, route: str, status: int, seconds: float, pool: Callable[[], int] | None = None
) -> None:
    """A request answered (`pool`: the pool's connections in use, read at the turn's end)."""
    _tally.add(method, route, status, seconds, pool)


_in_use = -1


def pool_in_use(count: int) -> None:
    """The gauge is written (a file write under a lock) only when the count changed."""
    global _in_use  # noqa: PLW0603
    if count != _in_use:
        _in_use = count
        _get().pool_in_use.set(count)


def pool_max(count: int) -> None:
    _get().pool_max.set(count)


def ready(is_ready: bool) -> None:
    _get().ready.set(1 if is_ready else 0)


def synchronous(waits: bool) -> None:
    _get().synchronous.set(1 if waits else 0)


_relayed = False


def relayed(configured: bool) -> None:
    """Whether events go to a broker (BROKER_URL set): without one, the outbox is read
    through the pull API only, nothing is ever "sent", and its age is no alarm."""
    global _relayed  # noqa: PLW0603
    _relayed = configured


def outbox(unsent: int, oldest_seconds: float) -> None:
    m = _get()
    m.events_unsent.set(unsent if _relayed else 0)
    m.events_oldest_unsent.set(oldest_seconds if _relayed else 0)


class RelayMetrics:
    """The relay's observer."""

    def published(self, events: int) -> None:
        _get().events_published.inc(events)


def refused(reason: str) -> None:
    _get().refusals.labels(reason).inc()


class MovementMetrics:
    """The application's MovementObserver: counts what the runner applied or replayed."""

    def applied(self, kind: str, caller: str | None, movements: int, kopecks: int) -> None:
        count, moved = _movement_series(kind, caller or "")
        count.inc(movements)
        if kopecks:
            moved.inc(kopecks / 100)

    def replayed(self, kind: str) -> None:
        _get().replays.labels(kind).inc()

    def committed(self, movements: int) -> None:
        m = _get()
        m.batch_size.observe(movements)
        m.db_transactions.inc()

    def expired(self, reservations: int) -> None:
        if reservations:
            _get().expired.inc(reservations)

    def shed(self, requests: int) -> None:
        _get().shed.inc(requests)


def overdue(seconds: float) -> None:
    _get().overdue.set(seconds)


def exposition() -> tuple[bytes, str]:
    _get()
    _tally.flush()  # this worker's requests of this turn, before the scrape reads them
    registry: Any = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
