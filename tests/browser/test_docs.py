"""/docs in a real browser (Debian's Chromium, driven by Playwright) with every request
to any host but the service blocked: Swagger UI must load from the service itself,
list every operation, take a token through Authorize and run a deposit."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from entrypoints.http.app import openapi_document
from tests.servers import ServerProcess, fresh_server

pytestmark = [pytest.mark.postgres, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "browser-token-0123456789abcdef"
# As root, without a sandbox; no call home (the machine has no network beyond the service).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def server(pg_server: str) -> Iterator[ServerProcess]:
    with fresh_server(pg_server, {"BALANCE_API_TOKENS": f"{TOKEN}=read+write+report"}) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def docs(server: ServerProcess, browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """The /docs page, with the addresses of every request that left for another host.
    (The server first: Playwright's sync API holds an event loop the server's set-up
    and tear-down must not run inside.)"""
    blocked: list[str] = []
    service = urlsplit(server.base_url).netloc

    def only_the_service(route: Route) -> None:
        if urlsplit(route.request.url).netloc == service:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context = browser.new_context()
    context.route("**/*", only_the_service)
    page = context.new_page()
    page.goto(f"{server.base_url}/docs")
    yield page, blocked
    context.close()


def test_docs_list_every_operation_with_no_network(docs: tuple[Page, list[str]]) -> None:
    page, blocked = docs
    operations = json.loads(openapi_document(secured=True))["paths"]
    count = sum(
        1 for item in operations.values() for method in item if method in {"get", "post", "put"}
    )
    expect(page.locator(".opblock")).to_have_count(count, timeout=20_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert {p.replace("\u200b", "") for p in paths} == set(operations)
    assert blocked == []


def test_a_deposit_runs_from_the_docs_with_a_token(
    docs: tuple[Page, list[str]], server: ServerProcess
) -> None:
    page, blocked = docs
    page.locator("button.authorize").first.click()
    page.locator(".modal-ux input").fill(TOKEN)
    page.locator(".modal-ux button.authorize").click()
    page.locator(".modal-ux button.btn-done").click()

    deposit = page.locator("#operations-money-createDeposit")
    deposit.locator(".opblock-summary").click()
    deposit.locator("button.try-out__btn").click()
    body = {"user_id": 31, "amount": "150.25", "description": "from /docs"}
    deposit.locator("textarea.body-param__text").fill(json.dumps(body))
    deposit.locator("button.execute").click()

    answer = deposit.locator(".live-responses-table .response").first
    expect(answer.locator(".response-col_status")).to_have_text("201", timeout=20_000)
    shown = answer.locator(".response-col_description pre").first.inner_text()
    assert json.loads(shown)["balance"] == {
        "user_id": 31,
        "available": "150.25",
        "reserved": "0.00",
    }
    balance = httpx.get(
        f"{server.base_url}/v1/users/31/balance", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert balance.json()["available"] == "150.25"
    assert blocked == []
