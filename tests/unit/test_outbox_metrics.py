"""Without a broker the outbox is read through the pull API only: its age is no alarm
(BalanceEventsBehind would fire forever); with one, the gauges say what waits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from entrypoints.http import metrics


@pytest.fixture
def restore() -> Iterator[None]:
    yield
    metrics.relayed(configured=False)
    metrics.outbox(0, 0.0)


def gauges() -> tuple[str, str]:
    text = metrics.exposition()[0].decode()
    lines = {line.split(" ")[0]: line.split(" ")[1] for line in text.splitlines() if line}
    return lines["balance_events_unsent"], lines["balance_events_oldest_unsent_seconds"]


def test_the_outbox_gauges_count_only_when_events_go_to_a_broker(restore: None) -> None:
    metrics.relayed(configured=False)
    metrics.outbox(5, 30.0)
    assert gauges() == ("0.0", "0.0")
    metrics.relayed(configured=True)
    metrics.outbox(5, 30.0)
    assert gauges() == ("5.0", "30.0")
