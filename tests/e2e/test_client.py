"""The typed client generated from the OpenAPI document (clients/python, `make client`)
drives a real server: what a calling team would write, checked by mypy too."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from balance_client import AuthenticatedClient
from balance_client.api.balances import (
    get_user_balance,
    get_user_limits,
    list_user_transactions,
    set_user_limits,
)
from balance_client.api.money import (
    create_batch,
    create_deposit,
    create_movement,
    create_withdrawal,
)
from balance_client.api.reports import create_revenue_report, get_monthly_revenue_report
from balance_client.api.reservations import create_reservation, recognize_reservation
from balance_client.api.services import name_service
from balance_client.models import (
    BalanceResponse,
    BatchRequest,
    BatchResponse,
    DepositOperation,
    DepositRequest,
    LegIn,
    LimitsRequest,
    LimitsResponse,
    ListUserTransactionsSort,
    MovementRequest,
    MovementRequestMetadata,
    MovementResponse,
    MoveResponse,
    Problem,
    RecognizeRequest,
    ReportLink,
    ReportRequest,
    ReservationRequest,
    ReservationResponse,
    ReservationResponseStatus,
    ServiceNameRequest,
    StatementResponse,
    TransferOperation,
    WithdrawalOperation,
    WithdrawalRequest,
)
from balance_client.types import UNSET

from tests.servers import ServerProcess, fresh_server

pytestmark = pytest.mark.postgres

TOKEN = "client-token-0123456789abcdef"
CALLER = "client-test"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(pg_server: str) -> Iterator[ServerProcess]:
    env = {"BALANCE_API_TOKENS": f"{TOKEN}=read+write+report+admin@{CALLER}"}
    with fresh_server(pg_server, env) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[AuthenticatedClient]:
    with AuthenticatedClient(base_url=server.base_url, token=TOKEN) as api:
        yield api


def test_money_moves_through_the_typed_client(client: AuthenticatedClient) -> None:
    key = str(uuid.uuid4())
    deposit = DepositRequest(user_id=7, amount="150.25", description="Card top-up")
    first = create_deposit.sync_detailed(client=client, body=deposit, idempotency_key=key)
    again = create_deposit.sync_detailed(client=client, body=deposit, idempotency_key=key)
    assert first.status_code == 201
    assert isinstance(first.parsed, MovementResponse)
    assert first.parsed.balance.available == "150.25"
    assert again.content == first.content  # replayed, not applied twice

    order = ReservationRequest(user_id=7, service_id=3, order_id=70, amount="100.00")
    reserved = create_reservation.sync(client=client, body=order)
    assert isinstance(reserved, ReservationResponse)
    assert reserved.status == ReservationResponseStatus.RESERVED

    partial = RecognizeRequest(user_id=7, service_id=3, amount="60.00")
    recognized = recognize_reservation.sync(order_id=70, client=client, body=partial)
    assert isinstance(recognized, ReservationResponse)
    assert recognized.status == ReservationResponseStatus.RECOGNIZED
    assert recognized.recognized_amount == "60.00"
    balance = get_user_balance.sync(user_id=7, client=client)
    assert isinstance(balance, BalanceResponse)
    assert (balance.available, balance.reserved, balance.total) == ("90.25", "0.00", "90.25")


def test_a_refusal_is_a_typed_problem(client: AuthenticatedClient) -> None:
    create_deposit.sync(client=client, body=DepositRequest(user_id=8, amount="5"))
    refused = create_withdrawal.sync_detailed(
        client=client, body=WithdrawalRequest(user_id=8, amount="5.01")
    )
    assert refused.status_code == 409
    assert isinstance(refused.parsed, Problem)
    assert refused.parsed.type_ == "/problems/insufficient-funds"
    assert isinstance(refused.parsed.errors, list)
    assert [e.field for e in refused.parsed.errors] == ["amount"]
    invalid = create_deposit.sync_detailed(
        client=client, body=DepositRequest(user_id=8, amount="0.001")
    )
    assert invalid.status_code == 422
    assert isinstance(invalid.parsed, Problem)
    assert isinstance(invalid.parsed.errors, list)
    assert [e.field for e in invalid.parsed.errors] == ["amount"]


def test_a_statement_is_walked_by_cursor(client: AuthenticatedClient) -> None:
    amounts = [f"{n}.00" for n in range(1, 8)]
    for amount in amounts:
        create_deposit.sync(client=client, body=DepositRequest(user_id=9, amount=amount))
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page = list_user_transactions.sync(
            user_id=9,
            client=client,
            sort=ListUserTransactionsSort.AMOUNT,
            limit=3,
            cursor=cursor if cursor is not None else UNSET,
        )
        assert isinstance(page, StatementResponse)
        seen += [item.amount for item in page.items]
        assert {item.caller for item in page.items} == {CALLER}  # the token's name
        if not isinstance(page.next_cursor, str):
            break
        cursor = page.next_cursor
    assert seen == amounts[::-1]


def test_the_monthly_report_is_read_through_its_link(client: AuthenticatedClient) -> None:
    name_service.sync(service_id=4, client=client, body=ServiceNameRequest(name="Delivery"))
    create_deposit.sync(client=client, body=DepositRequest(user_id=10, amount="20"))
    order = ReservationRequest(user_id=10, service_id=4, order_id=100, amount="12.50")
    create_reservation.sync(client=client, body=order)
    recognize = RecognizeRequest(user_id=10, service_id=4, amount="12.50")
    recognize_reservation.sync(order_id=100, client=client, body=recognize)
    now = datetime.now(UTC)
    link = create_revenue_report.sync(
        client=client, body=ReportRequest(year=now.year, month=now.month)
    )
    assert isinstance(link, ReportLink)
    assert link.url == f"/v1/reports/revenue/{now:%Y-%m}.csv"
    csv = get_monthly_revenue_report.sync(period=link.url.rsplit("/", 1)[1], client=client)
    assert isinstance(csv, str)
    assert "Delivery;12.50" in csv.splitlines()


def test_a_batch_goes_through_the_typed_client(client: AuthenticatedClient) -> None:
    lines: list[Any] = [
        DepositOperation(op="deposit", user_id=11, amount="10.00", idempotency_key="line-1"),
        TransferOperation(op="transfer", from_user_id=11, to_user_id=12, amount="4.00"),
        WithdrawalOperation(op="withdrawal", user_id=11, amount="100.00"),
    ]
    answer = create_batch.sync(client=client, body=BatchRequest(operations=lines))
    assert isinstance(answer, BatchResponse)
    assert [r.status for r in answer.results] == [201, 201, 409]
    assert answer.results[1].body["from_balance"]["available"] == "6.00"
    atomic = create_batch.sync_detailed(
        client=client, body=BatchRequest(operations=lines, atomic=True)
    )
    assert atomic.status_code == 409
    assert isinstance(atomic.parsed, Problem)
    assert isinstance(atomic.parsed.errors, list)
    assert atomic.parsed.errors[0].field == "operations[2].amount"


def test_limits_and_a_tagged_movement_go_through_the_typed_client(
    client: AuthenticatedClient,
) -> None:
    limits = set_user_limits.sync(
        21, client=client, body=LimitsRequest(credit_limit="30.00", frozen=False)
    )
    assert isinstance(limits, LimitsResponse)
    assert (limits.credit_limit, limits.balance.available) == ("30.00", "0.00")
    tags = MovementRequestMetadata.from_dict({"order": "9001"})
    legs = [LegIn(user_id=21, amount="-30.00"), LegIn(user_id=22, amount="30.00")]
    moved = create_movement.sync(
        client=client, body=MovementRequest(legs=legs, description="split", metadata=tags)
    )
    assert isinstance(moved, MoveResponse)
    assert [leg.balance.available for leg in moved.legs] == ["-30.00", "30.00"]
    assert moved.metadata.additional_properties == {"order": "9001"}
    again = get_user_limits.sync(21, client=client)
    assert isinstance(again, LimitsResponse)
    assert again.balance.available == "-30.00"
    more = create_movement.sync(client=client, body=MovementRequest(legs=legs))
    assert isinstance(more, Problem)
    assert more.type_ == "/problems/insufficient-funds"
    assert (more.available, more.credit_limit, more.requested) == ("-30.00", "30.00", "30.00")


def test_the_documented_client_snippet_runs_on_an_open_server(pg_server: str) -> None:
    """docs/api.md's snippet, as a reader pastes it, against `make run`'s kind of server
    (no tokens): it deposits, and run again it replays under its own key."""
    text = (ROOT / "docs" / "api.md").read_text()
    (snippet,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", text, re.S)
        if "balance_client" in block
    ]
    with fresh_server(pg_server) as server:
        code = snippet.replace("http://127.0.0.1:8080", server.base_url)
        printed = [
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
            for _ in range(2)
        ]
    assert printed == ["10.00\n", "10.00\n"], printed


def test_the_access_log_names_the_tokens_caller(
    server: ServerProcess, client: AuthenticatedClient
) -> None:
    """The workers' access lines (written straight, not through logging) name the
    caller of the token, and never the token."""
    body = DepositRequest(user_id=11, amount="1")
    rid = str(uuid.uuid4())
    answer = create_deposit.sync_detailed(
        client=client.with_headers({"X-Request-ID": rid}), body=body
    )
    assert answer.status_code == 201
    for _ in range(100):
        lines = [json.loads(line) for line in server.output().splitlines() if rid in line]
        if lines:
            break
        time.sleep(0.05)
    assert [(line["route"], line["status"], line["caller"]) for line in lines] == [
        ("/v1/deposits", 201, CALLER)
    ]
    assert TOKEN not in server.output()
