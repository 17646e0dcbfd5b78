"""An Idempotency-Key's fingerprint is a versioned canonical form of the request: it
must not change when the code does, or a retry that spans a deploy stops replaying."""

from __future__ import annotations

import pytest

from adapters.memory.store import InMemoryMovementBatch, InMemoryStore
from application.cancel import Cancel
from application.deposit import Deposit, deposit
from application.errors import IdempotencyKeyReused
from application.ports import IdempotencyRecord, StoredResponse
from application.recognize import Recognize
from application.reserve import Reserve
from application.runner import Command, MoneyMovements, fingerprint, legacy_fingerprint
from application.transfer import Transfer
from application.withdraw import Withdraw
from tests.helpers import keep, rub

# Pinned: if one of these changes, a stored key no longer matches its own retry.
# Change a command's canonical form only with a new version number in it.
PINNED: list[tuple[Command, tuple[object, ...], str]] = [
    (
        Deposit(1, rub("150.25"), "Card top-up"),
        ("deposit", 1, 1, 15025, "Card top-up"),
        "69f82f5629fb8bc9",
    ),
    (Withdraw(1, rub("10")), ("withdraw", 1, 1, 1000, ""), "9c163f00fd3f7176"),
    (Transfer(1, 2, rub("40")), ("transfer", 1, 1, 2, 4000, ""), "42c6f0005a715995"),
    (Reserve(1, 5, 1001, rub("30")), ("reserve", 1, 1, 5, 1001, 3000, ""), "aa60f115d5570790"),
    (Recognize(1001, 1, 5, rub("25")), ("recognize", 1, 1001, 1, 5, 2500), "769f6166e0cb407c"),
    (Cancel(1002, 1, 5), ("cancel", 1, 1002, 1, 5), "d5c43e3e2bacca8b"),
]


@pytest.mark.parametrize(("command", "canonical", "prefix"), PINNED)
def test_the_canonical_form_is_pinned(
    command: Command, canonical: tuple[object, ...], prefix: str
) -> None:
    assert command.canonical() == canonical
    assert fingerprint(command).startswith(prefix), fingerprint(command)


def test_no_description_and_an_empty_one_are_the_same_request() -> None:
    assert fingerprint(Deposit(1, rub("1"))) == fingerprint(Deposit(1, rub("1"), ""))
    assert fingerprint(Deposit(1, rub("1"))) != fingerprint(Deposit(1, rub("1"), "x"))
    assert fingerprint(Deposit(1, rub("1"))) != fingerprint(Withdraw(1, rub("1")))


async def test_a_key_stored_under_the_old_fingerprint_still_replays() -> None:
    store = InMemoryStore()
    command = Deposit(1, rub("5"))
    stored = StoredResponse(201, b"the first answer")
    store.idempotency["before-deploy"] = IdempotencyRecord(
        legacy_fingerprint(deposit, command), stored
    )
    movements = MoneyMovements(lambda: InMemoryMovementBatch(store))
    assert await movements.execute(deposit, command, keep, "before-deploy") == stored
    with pytest.raises(IdempotencyKeyReused):
        await movements.execute(deposit, Deposit(1, rub("6")), keep, "before-deploy")
    assert store.accounts == {}  # replayed, not applied
