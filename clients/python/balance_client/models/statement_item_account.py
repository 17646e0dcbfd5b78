from enum import StrEnum


class StatementItemAccount(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"

    def __str__(self) -> str:
        return str(self.value)
