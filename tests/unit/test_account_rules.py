"""The account and reservation rules on their own, for any amounts."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.account import UserAccount
from domain.errors import (
    BalanceLimit,
    InsufficientFunds,
    RecognitionExceedsReservation,
    ReservationAlreadyClosed,
)
from domain.ledger import EntryKind
from domain.money import MAX_BALANCE_KOPECKS, Money
from domain.reservation import Reservation, ReservationStatus

amounts = st.integers(min_value=1, max_value=10**9).map(Money)


@given(amounts, amounts)
def test_debit_never_goes_below_zero(balance: Money, amount: Money) -> None:
    account = UserAccount(1, balance, Money(0))
    if amount > balance:
        with pytest.raises(InsufficientFunds):
            account.debit(amount, EntryKind.WITHDRAWAL)
        assert account.available == balance
    else:
        posting = account.debit(amount, EntryKind.WITHDRAWAL)
        assert posting.amount == -amount
        assert posting.balance_after == account.available == balance - amount


@given(amounts, amounts)
def test_reserve_moves_money_between_the_two_balances(balance: Money, amount: Money) -> None:
    account = UserAccount(1, balance, Money(0))
    if amount > balance:
        with pytest.raises(InsufficientFunds):
            account.reserve(amount)
        assert (account.available, account.reserved) == (balance, Money(0))
        return
    debit, hold = account.reserve(amount)
    assert debit.amount + hold.amount == Money(0)
    assert account.total == balance
    assert (debit.balance_after, hold.balance_after) == (account.available, account.reserved)


@given(amounts, amounts)
def test_recognition_at_most_the_reserved_amount(reserved: Money, asked: Money) -> None:
    reservation = Reservation(1, 1, 1, reserved)
    if asked > reserved:
        with pytest.raises(RecognitionExceedsReservation):
            reservation.recognize(asked)
        assert reservation.is_open
    else:
        rest = reservation.recognize(asked)
        assert rest + asked == reserved
        assert reservation.status is ReservationStatus.RECOGNIZED


def test_a_closed_reservation_cannot_close_again() -> None:
    reservation = Reservation(1, 1, 1, Money(100))
    reservation.cancel()
    with pytest.raises(ReservationAlreadyClosed):
        reservation.recognize(Money(100))
    with pytest.raises(ReservationAlreadyClosed):
        reservation.cancel()


most = MAX_BALANCE_KOPECKS
balances = st.integers(min_value=-(10**15), max_value=most)


@given(balances, st.integers(min_value=0, max_value=most), st.integers(1, 10**15))
def test_no_credit_brings_an_account_past_the_most_it_holds(
    available: int, reserved: int, amount: int
) -> None:
    account = UserAccount(1, Money(available), Money(reserved))
    if available + reserved + amount > most:
        with pytest.raises(BalanceLimit):
            account.credit(Money(amount), EntryKind.DEPOSIT)
        assert (account.available, account.reserved) == (Money(available), Money(reserved))
    else:
        account.credit(Money(amount), EntryKind.DEPOSIT)
        assert account.total.kopecks <= most


def test_a_hold_given_back_is_never_refused_by_the_limit() -> None:
    account = UserAccount(1, Money(MAX_BALANCE_KOPECKS - 100), Money(0))
    account.reserve(Money(100))
    with pytest.raises(BalanceLimit):
        account.credit(Money(101), EntryKind.DEPOSIT)
    account.credit(Money(100), EntryKind.DEPOSIT)  # exactly the most: allowed
    account.release(Money(100), EntryKind.CANCEL)
    assert account.total == Money(MAX_BALANCE_KOPECKS)
