from enum import StrEnum


class ReservationResponseStatus(StrEnum):
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    RECOGNIZED = "recognized"
    RESERVED = "reserved"

    def __str__(self) -> str:
        return str(self.value)
