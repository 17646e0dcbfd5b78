from enum import StrEnum


class ReservationResponseStatus(StrEnum):
    CANCELLED = "cancelled"
    RECOGNIZED = "recognized"
    RESERVED = "reserved"

    def __str__(self) -> str:
        return str(self.value)
