from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidAmount
from domain.money import MAX_AMOUNT_KOPECKS, Money

kopecks = st.integers(min_value=1, max_value=MAX_AMOUNT_KOPECKS)


@given(kopecks)
def test_rubles_round_trip_exactly(value: int) -> None:
    money = Money(value)
    assert Money.amount(money.to_rubles()) == money
    assert Money.amount(Decimal(money.to_rubles())) == money


@given(st.integers(min_value=-MAX_AMOUNT_KOPECKS, max_value=MAX_AMOUNT_KOPECKS))
def test_text_form_has_two_places_and_no_float(value: int) -> None:
    text = Money(value).to_rubles()
    whole, _, cents = text.lstrip("-").partition(".")
    assert len(cents) == 2
    assert whole.isdigit()
    assert Decimal(text) * 100 == value


@given(kopecks, kopecks)
def test_arithmetic_is_exact(a: int, b: int) -> None:
    assert (Money(a) + Money(b)).kopecks == a + b
    assert (Money(a) - Money(b)).kopecks == a - b


@given(
    st.decimals(min_value=-(10**13), max_value=10**13, places=3).filter(
        lambda d: d != d.quantize(Decimal("0.01"))
    )
)
def test_more_than_two_decimals_are_refused(value: Decimal) -> None:
    with pytest.raises(InvalidAmount, match=r"2 decimal places|at most"):
        Money.amount(value)


@pytest.mark.parametrize(
    "bad",
    [
        "0",
        "0.00",
        "-1",
        "-0.01",
        "abc",
        "",
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "10000000000000.01",
        "0.001",
        "1.005",
        "1e-3",
        "1.0000000000000000000000000001",
        "9999999999999.999999999999999",
        "1E-1000000",
    ],
)
def test_bad_amounts_are_refused(bad: str) -> None:
    with pytest.raises(InvalidAmount):
        Money.amount(bad)


def test_bounds_are_inclusive() -> None:
    assert Money.amount("10000000000000.00").kopecks == MAX_AMOUNT_KOPECKS
    assert Money.amount("0.01").kopecks == 1
    assert Money.amount("1E+2").kopecks == 10000


@pytest.mark.parametrize("not_decimal", [1.5, 0.1, True, None, [1]])
def test_floats_and_other_types_never_become_money(not_decimal: object) -> None:
    with pytest.raises(InvalidAmount):
        Money.amount(not_decimal)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(1.0)  # type: ignore[arg-type]


@given(
    mantissa=st.from_regex(r"-?[0-9]{1,30}(\.[0-9]{1,30})?", fullmatch=True),
    exponent=st.integers(-(10**7), 10**7) | st.integers(-(10**20), 10**20),
)
def test_any_exponent_is_an_amount_or_a_refusal_never_a_crash(mantissa: str, exponent: int) -> None:
    """1E+1000000 overflowed the decimal context (a 500) before copy_abs."""
    text = f"{mantissa}E{exponent:+d}"
    try:
        money = Money.from_rubles(text)
    except InvalidAmount:
        return
    assert abs(money.kopecks) <= MAX_AMOUNT_KOPECKS
    assert Decimal(money.kopecks).scaleb(-2) == Decimal(text)
