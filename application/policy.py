"""What a batch does after an attempt failed: one decision, in one place.

- A passing failure before commit (a lost connection, a serialization failure, a
  deadlock victim, rows created meanwhile, a wait in turn that timed out): run the
  batch again, a few times (`last`: the caller counted them). Not after a database
  that took its time to fail (`slow`: a connect that hung to its timeout, a statement
  that stalled): a second try would take as long, so the batch is answered 503 now.
  Rows created meanwhile are a race lost, however long the batch took: run again.
- A commit whose outcome is unknown: it may have landed, so only requests whose
  whole answer is stored under a key run again (they replay if it did); the
  others get 503.
- Rows held past the lock timeout by another transaction: 503 at once; waiting
  again would only hold the caller longer.
- A key held past the lock timeout by a transaction that lingers: the requests
  without keys cannot be waiting on it and run again at once; the keyed ones are
  split until the one that waits is alone (then it gets 409).
- Any other error the database raised came from one request: split the batch until
  that request runs alone, and give it the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from application.errors import ConcurrentUpdate, RequestInProgress, RowsBusy, StoreUnavailable


class Pending(Protocol):
    @property
    def keys(self) -> tuple[str, ...]: ...

    @property
    def replayable(self) -> bool: ...


T = TypeVar("T", bound=Pending)


@dataclass(frozen=True, slots=True)
class Next(Generic[T]):
    failed: list[tuple[T, Exception]] = field(default_factory=list)
    retry: list[T] = field(default_factory=list)
    """Run again together, after a short pause."""
    apart: list[list[T]] = field(default_factory=list)
    """Run each group on its own, now."""


def after_failure(
    error: Exception, pending: Sequence[T], *, last: bool, slow: bool = False
) -> Next[T]:
    if isinstance(error, RowsBusy):
        return Next(failed=[(r, error) for r in pending])
    if isinstance(error, ConcurrentUpdate):
        return _again(StoreUnavailable("too much contention, try again"), pending, last=last)
    if isinstance(error, StoreUnavailable):
        return _again(error, pending, last=last or slow)
    if len(pending) == 1:
        return Next(failed=[(pending[0], error)])
    if isinstance(error, RequestInProgress):
        unkeyed = [r for r in pending if not r.keys]
        keyed = [r for r in pending if r.keys]
        return Next(apart=[part for part in (unkeyed, *_halves(keyed)) if part])
    return Next(apart=_halves(pending))


def _again(error: StoreUnavailable, pending: Sequence[T], *, last: bool) -> Next[T]:
    failed: list[tuple[T, Exception]] = []
    if not error.outcome_known:
        failed = [(r, error) for r in pending if not r.replayable]
        pending = [r for r in pending if r.replayable]
    if last:
        return Next(failed=failed + [(r, error) for r in pending])
    return Next(failed=failed, retry=list(pending))


def _halves(items: Sequence[T]) -> list[list[T]]:
    middle = (len(items) + 1) // 2
    return [list(items[:middle]), list(items[middle:])] if len(items) > 1 else [list(items)]
