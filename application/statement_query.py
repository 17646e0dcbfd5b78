"""What a statement asks for: sort, order, page size, period, kinds, position."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from application.errors import InvalidParameter
from domain.ledger import EntryKind, Metadata

MAX_LIMIT = 500


class StatementSort(Enum):
    DATE = "date"
    AMOUNT = "amount"  # by size: the largest movements first when descending


@dataclass(frozen=True, slots=True)
class StatementQuery:
    user_id: int
    sort: StatementSort = StatementSort.DATE
    descending: bool = True
    limit: int = 50
    since: datetime | None = None
    until: datetime | None = None
    kinds: frozenset[EntryKind] = field(default_factory=frozenset)
    after: tuple[int | str, int] | None = None
    """Keyset position: (sort key, entry id) of the last line already seen."""
    page: int | None = None
    metadata: Metadata = ()
    """Only entries of transactions tagged with every one of these pairs."""

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidParameter("limit", f"must be between 1 and {MAX_LIMIT}")
        if self.since and self.until and self.since >= self.until:
            raise InvalidParameter("from", "must be before to")
        if self.page is not None and self.page < 1:
            raise InvalidParameter("page", "must be 1 or more")
        if self.page is not None and self.after is not None:
            raise InvalidParameter("cursor", "cannot be combined with page")

    @property
    def after_key(self) -> tuple[int | datetime, int] | None:
        """The keyset position typed as the sort column: a size or a moment, then the id."""
        if self.after is None:
            return None
        position, entry_id = self.after
        if self.sort is StatementSort.AMOUNT:
            return int(position), entry_id
        return datetime.fromisoformat(str(position)), entry_id
