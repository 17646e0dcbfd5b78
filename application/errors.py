"""Failures that are not a rule's refusal: the store could not answer, or a key is busy."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from application.ports import StoredResponse


class ApplicationError(Exception):
    pass


class ConcurrentUpdate(ApplicationError):
    """Another transaction won a race the store detected; nothing was written. Retry."""


class StoreUnavailable(ApplicationError):
    """The store failed for a passing reason (connection lost, serialization, deadlock).

    `outcome_known` is False when the failure struck during commit: the write may
    or may not have landed, and only the same Idempotency-Key makes a retry safe.
    """

    def __init__(self, reason: str, *, outcome_known: bool = True) -> None:
        super().__init__(reason)
        self.outcome_known = outcome_known


class Outage:
    """A store that is down, for a loop that tries again: said once a reason and its
    end once, not a line at every try for as long as it lasts."""

    def __init__(self) -> None:
        self._reason: str | None = None

    def began(self, error: StoreUnavailable) -> bool:
        """Whether this failure is news: the first, or for another reason."""
        news = str(error) != self._reason
        self._reason = str(error)
        return news

    def ended(self) -> bool:
        """Whether a success ends an outage."""
        was, self._reason = self._reason, None
        return was is not None


class IdempotencyKeyReused(ApplicationError):
    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was used with a different request: other values, or another"
            " caller"
        )


class InvalidParameter(ApplicationError):
    """A query parameter or report period the service cannot answer for."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field


class RequestInProgress(ApplicationError):
    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still running")


class OperationRefused(ApplicationError):
    """An operation of an atomic batch was refused: the whole batch writes nothing of
    the ledger (its keys' answers only: apply.py)."""

    def __init__(self, index: int, refusal: Exception) -> None:
        super().__init__(f"operations[{index}]: {refusal}")
        self.index = index
        self.refusal = refusal


class RefusedWithBatch(ApplicationError):
    """An operation of an atomic batch that another operation's refusal undid: not
    applied. Its key is answered so (`apply.py`), as the refused one's is."""

    def __init__(self, index: int) -> None:
        super().__init__(f"not applied: operations[{index}] of its atomic batch was refused")
        self.index = index


class RefusedBefore(ApplicationError):
    """The refusal stored under a request's Idempotency-Key, replayed: the status and
    body its first client was sent, byte for byte."""

    def __init__(self, response: StoredResponse) -> None:
        super().__init__(response.body.decode(errors="replace"))
        self.response = response


class RowsBusy(StoreUnavailable):
    """A row the request needs stayed locked by another transaction past the lock
    timeout: nothing was written. Retrying at once would wait again."""

    def __init__(self) -> None:
        super().__init__("an account or order it needs is held by another transaction; try again")


class RowsContended(StoreUnavailable):
    """A row the batch waited for in turn stayed held past the short wait a batch
    gives another batch's commit: nothing was written. Run again, skipping the rows
    held elsewhere."""

    def __init__(self) -> None:
        super().__init__("an account or order it needs was held past a batch's turn")
