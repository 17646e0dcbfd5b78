"""The account and reservation rules on their own, for any amounts."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.account import UserAccount
from domain.errors import InsufficientFunds, RecognitionExceedsReservation, ReservationAlreadyClosed
from domain.ledger import EntryKind
from domain.money import Money
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
