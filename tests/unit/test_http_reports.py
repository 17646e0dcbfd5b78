"""Service catalogue and revenue reports over HTTP (memory store)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.http_api import PROBLEM, Api


def month_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def test_catalogue_and_monthly_report(api: Api) -> None:
    assert api.client.put("/v1/services/7", json={"name": "Delivery; fast"}).json() == {
        "service_id": 7,
        "name": "Delivery; fast",
    }
    assert api.client.get("/v1/services").json() == {
        "items": [{"service_id": 7, "name": "Delivery; fast"}]
    }
    api.post("/v1/deposits", {"user_id": 1, "amount": "100"})
    for order, service, amount in [(1, 7, "10.50"), (2, 8, "3"), (3, 7, "0.25")]:
        api.post(
            "/v1/reservations",
            {"user_id": 1, "service_id": service, "order_id": order, "amount": amount},
        )
        api.post(
            f"/v1/reservations/{order}/recognize",
            {"user_id": 1, "service_id": service, "amount": amount},
        )

    link = api.post(
        "/v1/reports/revenue", {"year": int(month_now()[:4]), "month": int(month_now()[5:])}
    )
    assert link.status_code == 201
    assert link.json() == {"url": f"/v1/reports/revenue/{month_now()}.csv"}
    report = api.client.get(link.json()["url"])
    assert report.status_code == 200
    assert report.headers["content-type"] == "text/csv; charset=utf-8"
    assert f'filename="revenue-{month_now()}.csv"' in report.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(report.text, newline=""), delimiter=";"))
    assert rows == [["service name", "total"], ["Delivery; fast", "10.75"], ["service #8", "3.00"]]

    # Always current: a recognition after the first read shows at the next read.
    api.post("/v1/reservations", {"user_id": 1, "service_id": 8, "order_id": 4, "amount": "1"})
    api.post("/v1/reservations/4/recognize", {"user_id": 1, "service_id": 8, "amount": "1"})
    again = list(csv.reader(io.StringIO(api.client.get(link.json()["url"]).text), delimiter=";"))
    assert again[-1] == ["service #8", "4.00"]

    today = datetime.now(UTC).date()
    period = api.client.get(
        "/v1/reports/revenue.csv", params={"from": today.isoformat(), "to": "9999-01-01"}
    )
    assert period.text == report.text.replace("3.00", "4.00")


def test_an_empty_month_is_a_header_only(api: Api) -> None:
    response = api.client.get("/v1/reports/revenue/2022-11.csv")
    assert response.text == "service name;total\r\n"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"year": 2022, "month": 13}, "month"),
        ({"year": 2022, "month": 0}, "month"),
        ({"year": 1999, "month": 1}, "year"),
        ({"year": "2022", "month": 1}, "year"),
        ({"year": 2022}, "month"),
    ],
)
def test_bad_report_requests(api: Api, body: dict[str, Any], field: str) -> None:
    api.refused(422, "/v1/reports/revenue", body, field)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/reports/revenue/2022-13.csv", "month"),
        ("/v1/reports/revenue/2022-11.xlsx", "period"),
        ("/v1/reports/revenue/november.csv", "period"),
        ("/v1/reports/revenue.csv?from=2022-11-02&to=2022-11-01", "from"),
        ("/v1/reports/revenue.csv?from=2022-11-01&to=soon", "to"),
    ],
)
def test_bad_report_reads(api: Api, path: str, field: str) -> None:
    response = api.client.get(path)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert field in [e["field"] for e in response.json()["errors"]]


@pytest.mark.parametrize("name", ["", " ", "x" * 201, "tab\there", None, 5])
def test_bad_service_names(api: Api, name: Any) -> None:
    response = api.client.put("/v1/services/1", json={"name": name})
    assert response.status_code == 422, response.text
    assert api.client.get("/v1/services").json() == {"items": []}
