"""A user's statement: every entry on their accounts, explained, sorted and paged.

Cursors are opaque to clients but carry the sort and the filters, so a page
walk cannot silently change its question halfway.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from application.errors import InvalidParameter
from application.ports import StatementRow, UnitOfWork
from application.statement_query import StatementQuery, StatementSort
from domain.errors import UserNotFound
from domain.ledger import AccountKind, EntryKind, Metadata
from domain.money import Money


@dataclass(frozen=True, slots=True)
class StatementLine:
    entry_id: int
    transaction_id: int
    kind: EntryKind
    account: AccountKind
    amount: Money
    balance_after: Money
    description: str
    service_id: int | None
    service_name: str | None
    order_id: int | None
    counterparty_user_id: int | None
    created_at: datetime
    metadata: Metadata = ()
    caller: str | None = None


@dataclass(frozen=True, slots=True)
class StatementPage:
    lines: list[StatementLine]
    next_cursor: str | None
    total: int | None


async def statement(query: StatementQuery, units: Callable[[], UnitOfWork]) -> StatementPage:
    async with units() as uow:
        if await uow.accounts.get(query.user_id) is None:
            raise UserNotFound(query.user_id)
        rows = await uow.statements.page(query)
        total = await uow.statements.count(query) if query.page is not None else None
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = None
    if more and query.page is None:
        next_cursor = encode_cursor(query, (sort_key(query, rows[-1]), rows[-1].entry_id))
    return StatementPage([explain(row) for row in rows], next_cursor, total)


def sort_key(query: StatementQuery, row: StatementRow) -> int | str:
    if query.sort is StatementSort.AMOUNT:
        return abs(row.amount)
    return row.created_at.isoformat()


_KINDS = {kind.value: kind for kind in EntryKind}
_ACCOUNTS = {account.value: account for account in AccountKind}


def explain(row: StatementRow) -> StatementLine:
    kind = _KINDS[row.kind]  # as EntryKind(row.kind), without the enum's call
    counterparty = (
        row.transaction_user_id if kind is EntryKind.TRANSFER_IN else row.counterparty_user_id
    )
    return StatementLine(
        row.entry_id,
        row.transaction_id,
        kind,
        _ACCOUNTS[row.account],
        Money(row.amount),
        Money(row.balance_after),
        describe(kind, row, counterparty),
        row.service_id,
        row.service_name,
        row.order_id,
        counterparty,
        row.created_at,
        row.metadata,
        row.caller,
    )


def describe(kind: EntryKind, row: StatementRow, counterparty: int | None) -> str:
    """Where the money came from or went, and why, in words."""
    service = f"service '{row.service_name}'" if row.service_name else f"service #{row.service_id}"
    # Only this line's words are formatted (every kind's f-string was, for each line).
    text = _WORDS[kind].format(user=counterparty, order=row.order_id, service=service)
    return f"{text}: {row.note}" if row.note else text


_WORDS = {
    EntryKind.DEPOSIT: "Deposit",
    EntryKind.WITHDRAWAL: "Withdrawal",
    EntryKind.TRANSFER_IN: "Transfer from user {user}",
    EntryKind.TRANSFER_OUT: "Transfer to user {user}",
    EntryKind.RESERVE: "Reserved for order {order}, {service}",
    EntryKind.CANCEL: "Reservation for order {order} cancelled",
    EntryKind.RECOGNIZE: "Revenue recognized for order {order}, {service}",
    EntryKind.RELEASE: "Unused rest of order {order} returned",
    EntryKind.EXPIRE: "Reservation for order {order} expired",
    EntryKind.MOVEMENT_OUT: "Sent in a movement",
    EntryKind.MOVEMENT_IN: "Received in a movement",
}


def encode_cursor(query: StatementQuery, after: tuple[int | str, int]) -> str:
    state = {
        "u": query.user_id,
        "s": query.sort.value,
        "d": query.descending,
        "f": query.since.isoformat() if query.since else None,
        "t": query.until.isoformat() if query.until else None,
        "k": sorted(k.value for k in query.kinds),
        "m": [list(pair) for pair in query.metadata],
        "a": list(after),
    }
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def build_query(
    user_id: int,
    *,
    limit: int = 50,
    page: int | None = None,
    cursor: str | None = None,
    sort: StatementSort | None = None,
    descending: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    kinds: frozenset[EntryKind] | None = None,
    metadata: Metadata | None = None,
) -> StatementQuery:
    """The query a client asks for. A cursor brings its own sort and filters: those the
    client repeats must match them, or the cursor was made for another question."""
    if cursor is None:
        return StatementQuery(
            user_id,
            sort or StatementSort.DATE,
            True if descending is None else descending,
            limit,
            since,
            until,
            kinds or frozenset(),
            None,
            page,
            metadata or (),
        )
    state = _decode(cursor)
    if state.get("u", user_id) != user_id:
        raise InvalidParameter("cursor", "was made for another user's statement")
    carried = StatementQuery(
        user_id,
        StatementSort(state["s"]),
        bool(state["d"]),
        limit,
        datetime.fromisoformat(state["f"]) if state["f"] else None,
        datetime.fromisoformat(state["t"]) if state["t"] else None,
        frozenset(EntryKind(k) for k in state["k"]),
        (state["a"][0], state["a"][1]),
        page,
        tuple((key, value) for key, value in state.get("m", [])),
    )
    for name, given, kept in [
        ("sort", sort, carried.sort),
        ("order", descending, carried.descending),
        ("from", since, carried.since),
        ("to", until, carried.until),
        ("kind", kinds, carried.kinds),
        ("metadata", metadata, carried.metadata),
    ]:
        if given is not None and given != kept:
            raise InvalidParameter(name, "differs from the one the cursor was made for")
    return carried


def _decode(cursor: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        key, entry_id = state["a"]
        StatementSort(state["s"])
        user, pairs = state.get("u", 0), state.get("m", [])
        [EntryKind(k) for k in state["k"]]
        for moment in (state["f"], state["t"]):
            if moment is not None:
                datetime.fromisoformat(moment)
        if isinstance(key, str):
            datetime.fromisoformat(key)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidParameter("cursor", "is not a cursor this service made") from None
    made_here = _is_bigint(entry_id) and (_is_bigint(key) or isinstance(key, str))
    if not (made_here and _is_bigint(user) and all(_is_pair(pair) for pair in pairs)):
        raise InvalidParameter("cursor", "is not a cursor this service made")
    return state  # type: ignore[no-any-return]


def _is_pair(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)


def _is_bigint(value: object) -> bool:
    return type(value) is int and 0 <= value < 2**63
