"""A retry that spans a deploy replays: keys stored by the version before group commit
(8b1b5a2, run from a clone of this repository) answer their own retries with the
stored answer on today's code, after today's migrations ran on the same database."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.servers import ServerProcess, server_of_tree, tree_at

pytestmark = pytest.mark.postgres

BEFORE_GROUP_COMMIT = "8b1b5a2"

# Every kind of keyed movement 8b1b5a2 served, in an order that makes each succeed.
REQUESTS: list[tuple[str, str, dict[str, object]]] = [
    ("d1", "/v1/deposits", {"user_id": 1, "amount": "150.25", "description": "Card top-up"}),
    ("d2", "/v1/deposits", {"user_id": 2, "amount": 10}),
    ("w1", "/v1/withdrawals", {"user_id": 1, "amount": "0.25"}),
    ("w2", "/v1/withdrawals", {"user_id": 1, "amount": "1", "description": "Payout \"q\" 'x'"}),
    ("t1", "/v1/transfers", {"from_user_id": 1, "to_user_id": 2, "amount": "40"}),
    (
        "t2",
        "/v1/transfers",
        {"from_user_id": 2, "to_user_id": 3, "amount": "5", "description": "rent"},
    ),
    ("r1", "/v1/reservations", {"user_id": 1, "service_id": 5, "order_id": 1001, "amount": "30"}),
    (
        "r2",
        "/v1/reservations",
        {
            "user_id": 1,
            "service_id": 6,
            "order_id": 1002,
            "amount": "12.34",
            "description": "Заказ №1002",
        },
    ),
    ("r3", "/v1/reservations", {"user_id": 2, "service_id": 5, "order_id": 1003, "amount": "1"}),
    ("rc", "/v1/reservations/1001/recognize", {"user_id": 1, "service_id": 5, "amount": "25"}),
    ("cn", "/v1/reservations/1002/cancel", {"user_id": 1, "service_id": 6}),
]


@pytest.fixture(scope="module")
def old_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as it was at 8b1b5a2."""
    return tree_at(BEFORE_GROUP_COMMIT, tmp_path_factory.mktemp(BEFORE_GROUP_COMMIT))


def post(server: ServerProcess, key: str, path: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}{path}", json=body, headers={"Idempotency-Key": key}, timeout=10
    )


def test_keys_stored_before_group_commit_replay_after_the_upgrade(
    old_tree: Path, database: str
) -> None:
    old = server_of_tree(old_tree, {"DATABASE_URL": database})
    old.start()
    try:
        first = {key: post(old, key, path, body) for key, path, body in REQUESTS}
    finally:
        assert old.stop() == 0
    assert [r.status_code for r in first.values()] == [201] * 9 + [200, 200]
    assert "Started worker-1" in old.output()

    new = ServerProcess({"DATABASE_URL": database}, workers=1)  # migrates to today's head
    new.start()
    try:
        for key, path, body in REQUESTS:
            retry = post(new, key, path, body)
            assert (retry.status_code, retry.content) == (
                first[key].status_code,
                first[key].content,
            ), key
        changed = post(new, "r1", "/v1/reservations", {**REQUESTS[6][2], "amount": "31"})
        assert changed.status_code == 422
        assert changed.json()["type"] == "/problems/idempotency-key-reused"
        balance = httpx.get(f"{new.base_url}/v1/users/1/balance", timeout=10).json()
    finally:
        new.kill()
    # Replayed, not applied again: 150.25 - 0.25 - 1 - 40 - 30 (reserved, 25 of it
    # recognized, 5 back) - 12.34 (reserved, then cancelled) = 84.00 available.
    assert (balance["available"], balance["reserved"]) == ("84.00", "0.00")
