"""The bank test's checker must catch what it claims to: fed broken ledgers, it fails."""

from __future__ import annotations

from typing import Any

from tests.bank.checks import movements_in_ledger, reservations_match
from tests.bank.workload import Operation
from tests.ledger_view import LedgerSnapshot, ReservationRow


def deposit(key: str, outcome: str, response: dict[str, Any] | None = None) -> Operation:
    body = {"user_id": 1, "amount": "1.00", "description": f"bank {key}"}
    op = Operation("deposit", key, "/v1/deposits", body)
    op.outcome = outcome  # type: ignore[assignment]
    op.response = response
    return op


def written(*pairs: tuple[int, str]) -> list[Any]:
    return [{"id": i, "kind": "deposit", "description": d, "order_id": None} for i, d in pairs]


def test_a_clean_ledger_passes() -> None:
    ops = [
        deposit("a", "ok", {"transaction_id": 1}),
        deposit("b", "refused"),
        deposit("c", "unknown"),
    ]
    assert movements_in_ledger(ops, written((1, "bank a"), (2, "bank c"))) == []


def test_an_acknowledged_movement_written_twice_or_never_fails() -> None:
    ops = [deposit("a", "ok"), deposit("b", "ok")]
    problems = movements_in_ledger(ops, written((1, "bank a"), (2, "bank a")))
    assert any("a is in the ledger 2x" in p for p in problems)
    assert any("b is in the ledger 0x" in p for p in problems)


def test_a_refusal_that_wrote_or_a_phantom_transaction_fails() -> None:
    ops = [
        deposit("a", "refused"),
        deposit("b", "unknown"),
        deposit("c", "ok", {"transaction_id": 9}),
    ]
    ledger = written((1, "bank a"), (2, "bank b"), (3, "bank b"), (4, "bank zzz"), (5, "bank c"))
    problems = movements_in_ledger(ops, ledger)
    assert any("refused deposit a" in p for p in problems)
    assert any("unacknowledged deposit b is in the ledger 2x" in p for p in problems)
    assert any("belong to no operation" in p for p in problems)
    assert any("wrote 5" in p for p in problems)


def test_a_cancel_answered_ok_on_a_recognized_order_fails() -> None:
    cancel = Operation("cancel", "k", "/v1/reservations/7/cancel", {"user_id": 1, "service_id": 2})
    cancel.outcome = "ok"
    row = ReservationRow(7, 1, 2, 100, "recognized", 100)
    ledger = LedgerSnapshot({}, [], [row], 0)
    closings = [{"id": 1, "kind": "recognize", "description": None, "order_id": 7}] * 2
    problems = reservations_match([cancel], ledger, closings)
    assert any("order 7 closed 2 times" in p for p in problems)
    assert any("cancel k answered ok" in p for p in problems)
