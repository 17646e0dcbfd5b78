"""Errors named for the rule they guard."""


def _rubles(kopecks: int) -> str:
    return f"{kopecks // 100}.{kopecks % 100:02d}"


class DomainError(Exception):
    """A request the rules refuse. Nothing was written."""


class InvalidAmount(DomainError, ValueError):
    def __init__(self, reason: str, field: str = "amount") -> None:
        super().__init__(f"{field} {reason}")
        self.reason = reason
        self.field = field


class UserNotFound(DomainError):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id} has no account")
        self.user_id = user_id


class InsufficientFunds(DomainError):
    def __init__(self, user_id: int, available: int, requested: int) -> None:
        super().__init__(
            f"user {user_id} has {_rubles(available)} available, {_rubles(requested)} requested"
        )
        self.user_id = user_id


class SameUserTransfer(DomainError):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"cannot transfer from user {user_id} to the same user")


class ReservationNotFound(DomainError):
    def __init__(self, order_id: int) -> None:
        super().__init__(f"no reservation for order {order_id}")
        self.order_id = order_id


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
