"""The rules of every money movement, run on the memory and the PostgreSQL adapter alike."""

from __future__ import annotations

from dataclasses import replace

import pytest

from application.cancel import Cancel, cancel
from application.deposit import Deposit, deposit
from application.errors import IdempotencyKeyReused, RefusedBefore
from application.get_balance import get_balance
from application.recognize import Recognize, recognize
from application.reserve import Reserve, reserve
from application.transfer import Transfer, transfer
from application.withdraw import Withdraw, withdraw
from domain.errors import (
    InsufficientFunds,
    OrderAlreadyUsed,
    RecognitionExceedsReservation,
    ReservationAlreadyClosed,
    ReservationMismatch,
    ReservationNotFound,
    SameUserTransfer,
    UserNotFound,
)
from domain.money import Money
from domain.reservation import ReservationStatus
from tests.conftest import Adapter
from tests.helpers import rub, run
from tests.ledger_view import check_invariants


async def balance(adapter: Adapter, user_id: int) -> tuple[str, str]:
    b = await get_balance(user_id, adapter.uow)
    return b.available.to_rubles(), b.reserved.to_rubles()


async def assert_refused_without_writes(
    adapter: Adapter, call: object, error: type[Exception]
) -> None:
    before = await adapter.view.snapshot()
    with pytest.raises(error):
        await call  # type: ignore[misc]
    assert await adapter.view.snapshot() == before


async def test_first_deposit_opens_the_account(adapter: Adapter) -> None:
    with pytest.raises(UserNotFound):
        await get_balance(1, adapter.uow)
    result = await run(adapter, deposit, Deposit(1, rub("100.50"), "card"))
    assert result.balance.available == rub("100.50")
    assert await balance(adapter, 1) == ("100.50", "0.00")
    check_invariants(await adapter.view.snapshot())


async def test_withdrawal_takes_available_money_and_no_more(adapter: Adapter) -> None:
    await run(adapter, deposit, Deposit(1, rub("10")))
    result = await run(adapter, withdraw, Withdraw(1, rub("9.99")))
    assert result.balance.available == rub("0.01")
    await assert_refused_without_writes(
        adapter, run(adapter, withdraw, Withdraw(1, rub("0.02"))), InsufficientFunds
    )
    await assert_refused_without_writes(
        adapter, run(adapter, withdraw, Withdraw(2, rub("1"))), UserNotFound
    )
    check_invariants(await adapter.view.snapshot())


async def test_transfer_moves_money_and_opens_the_receiver(adapter: Adapter) -> None:
    await run(adapter, deposit, Deposit(1, rub("50")))
    result = await run(adapter, transfer, Transfer(1, 2, rub("20.25"), "rent"))
    assert (result.from_balance.available, result.to_balance.available) == (
        rub("29.75"),
        rub("20.25"),
    )
    await assert_refused_without_writes(
        adapter, run(adapter, transfer, Transfer(1, 3, rub("29.76"))), InsufficientFunds
    )
    await assert_refused_without_writes(
        adapter, run(adapter, transfer, Transfer(9, 1, rub("1"))), UserNotFound
    )
    await assert_refused_without_writes(
        adapter, run(adapter, transfer, Transfer(1, 1, rub("1"))), SameUserTransfer
    )
    with pytest.raises(UserNotFound):  # the refused transfer to 3 opened nothing
        await get_balance(3, adapter.uow)
    check_invariants(await adapter.view.snapshot())


async def test_reserve_holds_money_and_a_repeat_changes_nothing(adapter: Adapter) -> None:
    await run(adapter, deposit, Deposit(1, rub("100")))
    first = await run(adapter, reserve, Reserve(1, 5, 77, rub("30")))
    assert first.created
    assert await balance(adapter, 1) == ("70.00", "30.00")
    again = await run(adapter, reserve, Reserve(1, 5, 77, rub("30")))
    assert not again.created
    assert again.reservation == first.reservation
    assert await balance(adapter, 1) == ("70.00", "30.00")
    await assert_refused_without_writes(
        adapter, run(adapter, reserve, Reserve(1, 5, 77, rub("31"))), OrderAlreadyUsed
    )
    await assert_refused_without_writes(
        adapter, run(adapter, reserve, Reserve(1, 5, 78, rub("70.01"))), InsufficientFunds
    )
    await assert_refused_without_writes(
        adapter, run(adapter, reserve, Reserve(2, 5, 79, rub("1"))), UserNotFound
    )
    check_invariants(await adapter.view.snapshot())


async def test_partial_recognition_releases_the_rest(adapter: Adapter) -> None:
    await run(adapter, deposit, Deposit(1, rub("100")))
    await run(adapter, reserve, Reserve(1, 5, 77, rub("30")))
    result = await run(adapter, recognize, Recognize(77, 1, 5, rub("20")))
    assert result.reservation.status is ReservationStatus.RECOGNIZED
    assert result.reservation.recognized_amount == rub("20")
    assert await balance(adapter, 1) == ("80.00", "0.00")
    ledger = await adapter.view.snapshot()
    revenue = [e for e in ledger.entries if e.account == "revenue"]
    assert [(e.service_id, e.amount) for e in revenue] == [(5, 2000)]
    assert {e.kind for e in ledger.entries if e.account == "available"} >= {"release"}
    check_invariants(ledger)


async def test_recognize_refusals_write_nothing(adapter: Adapter) -> None:
    await run(adapter, deposit, Deposit(1, rub("100")))
    await run(adapter, reserve, Reserve(1, 5, 77, rub("30")))
    for command, error in [
        (Recognize(78, 1, 5, rub("1")), ReservationNotFound),
        (Recognize(77, 2, 5, rub("1")), ReservationMismatch),
        (Recognize(77, 1, 6, rub("1")), ReservationMismatch),
        (Recognize(77, 1, 5, rub("30.01")), RecognitionExceedsReservation),
    ]:
        await assert_refused_without_writes(adapter, run(adapter, recognize, command), error)


async def test_a_reservation_ends_once(adapter: Adapter) -> None:
    await run(adapter, deposit, Deposit(1, rub("100")))
    await run(adapter, reserve, Reserve(1, 5, 77, rub("30")))
    done = await run(adapter, recognize, Recognize(77, 1, 5, rub("30")))
    repeat = await run(adapter, recognize, Recognize(77, 1, 5, rub("30")))
    assert repeat.reservation == done.reservation
    assert not repeat.created
    await assert_refused_without_writes(
        adapter, run(adapter, recognize, Recognize(77, 1, 5, rub("29"))), ReservationAlreadyClosed
    )
    await assert_refused_without_writes(
        adapter, run(adapter, cancel, Cancel(77, 1, 5)), ReservationAlreadyClosed
    )
    await run(adapter, reserve, Reserve(1, 5, 78, rub("10")))
    cancelled = await run(adapter, cancel, Cancel(78, 1, 5))
    assert cancelled.reservation.status is ReservationStatus.CANCELLED
    assert not (await run(adapter, cancel, Cancel(78, 1, 5))).created
    await assert_refused_without_writes(
        adapter, run(adapter, recognize, Recognize(78, 1, 5, rub("10"))), ReservationAlreadyClosed
    )
    assert await balance(adapter, 1) == ("70.00", "0.00")
    check_invariants(await adapter.view.snapshot())


async def test_idempotency_key_replays_and_refuses_other_requests(adapter: Adapter) -> None:
    first = await run(adapter, deposit, Deposit(1, rub("10")), key="pay-1")
    replay = await run(adapter, deposit, Deposit(1, rub("10")), key="pay-1")
    assert replay == first
    assert await balance(adapter, 1) == ("10.00", "0.00")
    await assert_refused_without_writes(
        adapter, run(adapter, deposit, Deposit(1, rub("11")), key="pay-1"), IdempotencyKeyReused
    )
    await assert_refused_without_writes(
        adapter, run(adapter, withdraw, Withdraw(1, rub("10")), key="pay-1"), IdempotencyKeyReused
    )


async def test_a_refused_request_is_answered_so_under_its_key(adapter: Adapter) -> None:
    """The first answer under a key is its answer, a refusal too (README, decision 7):
    once money came, a retry under the key is told the same refusal and moves nothing;
    a new key runs."""
    await run(adapter, deposit, Deposit(1, rub("5")))
    before = await adapter.view.snapshot()
    with pytest.raises(InsufficientFunds) as refused:
        await run(adapter, withdraw, Withdraw(1, rub("10")), key="w-1")
    after_refusal = await adapter.view.snapshot()
    assert after_refusal.idempotency_keys == 1  # its answer, and nothing else
    assert replace(after_refusal, idempotency_keys=0) == before
    await run(adapter, deposit, Deposit(1, rub("5")))
    with pytest.raises(RefusedBefore) as replayed:
        await run(adapter, withdraw, Withdraw(1, rub("10")), key="w-1")
    assert str(refused.value) in replayed.value.response.body.decode()
    assert await balance(adapter, 1) == ("10.00", "0.00")
    result = await run(adapter, withdraw, Withdraw(1, rub("10")), key="w-2")
    assert result.balance.available == Money(0)
