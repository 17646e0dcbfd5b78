from enum import StrEnum


class StatementItemKind(StrEnum):
    CANCEL = "cancel"
    DEPOSIT = "deposit"
    EXPIRE = "expire"
    RECOGNIZE = "recognize"
    RELEASE = "release"
    RESERVE = "reserve"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"
    WITHDRAWAL = "withdrawal"

    def __str__(self) -> str:
        return str(self.value)
