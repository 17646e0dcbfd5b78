from enum import StrEnum


class ListUserTransactionsSort(StrEnum):
    AMOUNT = "amount"
    DATE = "date"

    def __str__(self) -> str:
        return str(self.value)
