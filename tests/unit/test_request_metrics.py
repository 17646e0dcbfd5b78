"""Requests are counted once a turn of the event loop: what a scrape shows must be what
counting each request as it ended showed."""

from __future__ import annotations

import asyncio
import random

from prometheus_client import CollectorRegistry, Histogram

from entrypoints.http import metrics

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _histogram() -> Histogram:
    return Histogram("h", "h", buckets=BUCKETS, registry=CollectorRegistry())


def _samples(histogram: Histogram) -> dict[str, float]:
    return {
        f"{sample.name}{sorted(sample.labels.items())}": sample.value
        for metric in histogram.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


def test_observing_a_turn_at_once_gives_what_observing_each_gave() -> None:
    chosen = random.Random(7)
    # On the bounds, between them, past the last, and zero.
    amounts = [*BUCKETS, 0.0, 11.0, *(chosen.uniform(0, 3) for _ in range(500))]
    each, at_once = _histogram(), _histogram()
    for amount in amounts:
        each.observe(amount)
    metrics.observe_all(at_once, amounts)

    expected, got = _samples(each), _samples(at_once)
    sums = "h_sum[]"
    assert abs(got.pop(sums) - expected.pop(sums)) < 1e-9
    assert got == expected
    # Cumulative: a bound counts what fell on it (0.001 itself) and below (0.0).
    assert expected["h_bucket[('le', '0.001')]"] == sum(a <= 0.001 for a in amounts) >= 2
    assert expected["h_bucket[('le', '+Inf')]"] == len(amounts)


def _count(route: str) -> float:
    text = metrics.exposition()[0].decode()
    prefix = f'balance_http_requests_total{{method="GET",route="{route}",status="200"}} '
    return next(
        (float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)), 0.0
    )


def test_a_turns_requests_are_counted_when_it_ends_or_when_scraped() -> None:
    route = f"/test/{random.getrandbits(32)}"
    seen_in_the_turn: list[float] = []

    async def turn() -> None:
        for _ in range(3):
            metrics.request_done("GET", route, 200, 0.002)
        # Not yet written to the shared values: a scrape in another worker would not
        # see them until this turn ends...
        seen_in_the_turn.append(_shared(route))
        await asyncio.sleep(0)  # ...which it now has.
        seen_in_the_turn.append(_shared(route))
        metrics.request_done("GET", route, 200, 0.002)
        # A scrape by this worker counts its own turn first.
        seen_in_the_turn.append(_count(route))

    asyncio.run(turn())
    assert seen_in_the_turn == [0.0, 3.0, 4.0]


def _shared(route: str) -> float:
    """The count as written to the shared value, without flushing the turn."""
    count, _ = metrics._request_series("GET", route, 200)
    return float(count._value.get())


def test_without_a_loop_a_request_is_counted_at_once() -> None:
    route = f"/test/{random.getrandbits(32)}"
    metrics.request_done("GET", route, 200, 0.002)
    assert _shared(route) == 1.0
