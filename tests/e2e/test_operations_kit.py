"""The Grafana dashboard and the Prometheus alerts name only metrics and labels that
a running service exports: a renamed metric cannot leave a panel or an alert blind."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import fresh_server

pytestmark = pytest.mark.postgres

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "balance.json"
RULES = DEPLOY / "prometheus" / "alerts.yml"
SUFFIXES = re.compile(r"_(bucket|sum|count|total|created)$")


def expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    found = [target["expr"] for panel in panels for target in panel["targets"]]
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return found + [rule["expr"] for group in groups for rule in group["rules"]]


def named_in(expression: str) -> tuple[set[str], set[str]]:
    """The metric families and the label names an expression uses."""
    metrics = {SUFFIXES.sub("", name) for name in re.findall(r"\bbalance_[a-z_]+", expression)}
    labels = {
        label.strip()
        for group in re.findall(r"\bby \(([^)]*)\)", expression)
        for label in group.split(",")
    }
    labels |= set(re.findall(r"[{,]\s*([a-z_]+)\s*=~?", expression))
    return metrics, labels - {"le"}


def test_every_metric_and_label_named_is_exported(pg_server: str) -> None:
    with fresh_server(pg_server) as server, httpx.Client(base_url=server.base_url) as api:
        deposit = {"user_id": 1, "amount": "5.00"}
        for _ in range(2):  # the second one is a replay
            api.post("/v1/deposits", json=deposit, headers={"Idempotency-Key": "kit-1"})
        api.post("/v1/withdrawals", json={"user_id": 1, "amount": "6.00"})  # refused
        exported = api.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(exported)}
    labels = {
        label
        for family in families.values()
        for sample in family.samples
        for label in sample.labels
    }
    used = [named_in(expression) for expression in expressions()]
    assert len(used) >= 17
    metrics = set().union(*(m for m, _ in used))
    assert len(metrics) >= 9, metrics
    assert metrics <= families.keys(), metrics - families.keys()
    assert all(families[name].samples for name in metrics), metrics
    assert set().union(*(names for _, names in used)) <= labels
    assert {s.value for s in families["balance_ready"].samples} == {1.0}
    # This server waits for no standby (tests/integration/test_unreplicated_commit.py:
    # one that does).
    assert {s.value for s in families["balance_db_synchronous_standby"].samples} == {0.0}


def test_names_are_found_in_expressions() -> None:
    metrics, labels = named_in(
        "histogram_quantile(0.99, sum by (le, route) (rate(balance_http_request_duration"
        '_seconds_bucket{route=~"/v1/.*", status="500"}[5m])))'
    )
    assert metrics == {"balance_http_request_duration_seconds"}
    assert labels == {"route", "status"}
