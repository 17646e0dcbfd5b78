"""Errors named for the rule they guard."""


def _rubles(kopecks: int) -> str:
    sign = "-" if kopecks < 0 else ""
    return f"{sign}{abs(kopecks) // 100}.{abs(kopecks) % 100:02d}"


class DomainError(Exception):
    """A request the rules refuse. Nothing was written."""


class InvalidAmount(DomainError, ValueError):
    def __init__(self, reason: str, field: str = "amount") -> None:
        super().__init__(f"{field} {reason}")
        self.reason = reason
        self.field = field


class UserNotFound(DomainError):
    def __init__(self, user_id: int, field: str = "user_id") -> None:
        super().__init__(f"user {user_id} has no account")
        self.user_id = user_id
        self.field = field


class InsufficientFunds(DomainError):
    def __init__(self, user_id: int, available: int, requested: int, credit_limit: int = 0) -> None:
        limit = f" and a credit limit of {_rubles(credit_limit)}" if credit_limit else ""
        super().__init__(
            f"user {user_id} has {_rubles(available)} available{limit},"
            f" {_rubles(requested)} requested"
        )
        self.user_id = user_id
        self.available = _rubles(available)
        self.credit_limit = _rubles(credit_limit)
        self.requested = _rubles(requested)


class BalanceLimit(DomainError):
    """A credit that would bring an account past the most one account holds."""

    def __init__(self, user_id: int, balance: int, requested: int, most: int) -> None:
        super().__init__(
            f"user {user_id} holds {_rubles(balance)}: {_rubles(requested)} more would pass"
            f" {_rubles(most)}, the most one account holds"
        )
        self.user_id = user_id


class AccountFrozen(DomainError):
    def __init__(self, user_id: int, field: str = "user_id") -> None:
        super().__init__(f"user {user_id}'s account is frozen: no debit is allowed")
        self.user_id = user_id
        self.field = field


class InvalidLimit(DomainError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"credit_limit {reason}")
        self.field = "credit_limit"


class InvalidMovement(DomainError):
    """A multi-leg movement that cannot be one ledger transaction as written."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field
        self.reason = reason


class LegRefused(DomainError):
    """A leg of a multi-leg movement was refused: the movement writes nothing."""

    def __init__(self, index: int, refusal: DomainError) -> None:
        super().__init__(f"legs[{index}]: {refusal}")
        self.index = index
        self.refusal = refusal


class SameUserTransfer(DomainError):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"cannot transfer from user {user_id} to the same user")


class ReservationNotFound(DomainError):
    def __init__(self, order_id: int) -> None:
        super().__init__(f"no reservation for order {order_id}")
        self.order_id = order_id
        self.field = "order_id"


class OrderAlreadyUsed(DomainError):
    def __init__(self, order_id: int) -> None:
        super().__init__(f"order {order_id} is already reserved with other values")


class ReservationMismatch(DomainError):
    def __init__(self, order_id: int, field: str) -> None:
        super().__init__(f"order {order_id} was reserved with another {field}")
        self.field = field


class ReservationAlreadyClosed(DomainError):
    def __init__(self, order_id: int, status: str) -> None:
        super().__init__(f"order {order_id} is already {status}")
        self.status = status


class ReservationExpired(DomainError):
    def __init__(self, order_id: int) -> None:
        super().__init__(f"order {order_id} expired: its money is available again")


class InvalidExpiry(DomainError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"expires_at {reason}")
        self.field = "expires_at"


class RecognitionExceedsReservation(DomainError):
    def __init__(self, order_id: int, reserved: int, requested: int) -> None:
        super().__init__(
            f"order {order_id} holds {_rubles(reserved)}, cannot recognize {_rubles(requested)}"
        )


class UnbalancedTransaction(DomainError):
    """A journal transaction whose entries do not sum to zero: a programming error."""
