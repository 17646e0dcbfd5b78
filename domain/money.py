"""Money as an exact count of kopecks. No float ever touches an amount."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from enum import Enum

from domain.errors import InvalidAmount


class Currency(Enum):
    RUB = "RUB"


KOPECKS_PER_RUBLE = 100
MAX_AMOUNT_RUBLES = 10**13
MAX_AMOUNT_KOPECKS = MAX_AMOUNT_RUBLES * KOPECKS_PER_RUBLE
# The most one account holds (available plus reserved): a hundred of the largest
# amounts. The ledger's columns are 64-bit kopecks (9.2e18); a credit past this is
# refused before anything is written, so no balance, hold or sum of them ever
# reaches what the database cannot store.
MAX_BALANCE_RUBLES = 10**15
MAX_BALANCE_KOPECKS = MAX_BALANCE_RUBLES * KOPECKS_PER_RUBLE
_CENT = Decimal("0.01")
# What a client is told for every amount it wrote wrong, however it was wrong (a
# string or a number, "-1", "0.001", "abc", 1e30): what is allowed.
AMOUNT_RULE = (
    f"must be a positive number of rubles with at most 2 decimals, at most {MAX_AMOUNT_RUBLES}.00"
)
LEG_AMOUNT_RULE = (
    "must be a non-zero number of rubles with at most 2 decimals,"
    f" at most {MAX_AMOUNT_RUBLES}.00 either way"
)


@dataclass(frozen=True, slots=True, order=True)
class Money:
    """An amount in the smallest unit of its currency.

    Balances and signed ledger postings are Money too, so the value may be zero
    or negative; amounts that clients ask to move come through `Money.amount`.
    """

    kopecks: int
    currency: Currency = Currency.RUB

    def __post_init__(self) -> None:
        if type(self.kopecks) is not int:
            raise TypeError(f"Money needs an int count of kopecks, got {type(self.kopecks)}")

    @classmethod
    def zero(cls) -> Money:
        return cls(0)

    @classmethod
    def amount(cls, rubles: Decimal | str | int) -> Money:
        """A positive amount to move: exact rubles, at most 2 decimals, at most 10^13."""
        money = cls.from_rubles(rubles)
        if money.kopecks <= 0:
            raise InvalidAmount("must be greater than 0")
        return money

    @classmethod
    def from_rubles(cls, rubles: Decimal | str | int) -> Money:
        if isinstance(rubles, bool) or not isinstance(rubles, Decimal | str | int):
            raise InvalidAmount("must be a decimal number of rubles")
        try:
            value = Decimal(rubles)
        except InvalidOperation:
            raise InvalidAmount("must be a decimal number of rubles") from None
        if not value.is_finite():
            raise InvalidAmount("must be a finite number")
        # copy_abs, not abs(): abs() rounds in the context and overflows (a 500) on
        # an exponent past its Emax, e.g. 1E+1000000.
        if value.copy_abs() > MAX_AMOUNT_RUBLES:
            raise InvalidAmount(f"must be at most {MAX_AMOUNT_RUBLES}")
        # Exact: quantize to 16 digits at most, then compare; multiplying first would
        # round in the 28-digit context and accept 1.0000000000000000000000000001.
        cents = value.quantize(_CENT, rounding=ROUND_DOWN)
        if cents != value:
            raise InvalidAmount("must have at most 2 decimal places")
        return cls(int(cents.scaleb(2)))

    def to_rubles(self) -> str:
        """Exact decimal rubles with two places, e.g. '150.25', '-0.05'."""
        sign = "-" if self.kopecks < 0 else ""
        rubles, kopecks = divmod(abs(self.kopecks), KOPECKS_PER_RUBLE)
        return f"{sign}{rubles}.{kopecks:02d}"

    def __add__(self, other: Money) -> Money:
        return Money(self.kopecks + other.kopecks, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.kopecks - other.kopecks, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.kopecks, self.currency)

    def __str__(self) -> str:
        return f"{self.to_rubles()} {self.currency.value}"
