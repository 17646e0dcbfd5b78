"""An Idempotency-Key's fingerprint must not change when the code does, or a retry that
spans a deploy stops replaying. Every hash here is a literal produced by the code
that stored keys under it: never computed by today's code, which could drift with
it (tests/e2e/test_deploy.py replays keys stored by that code itself)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from adapters.memory.store import InMemoryMovementBatch, InMemoryStore
from application.cancel import Cancel
from application.deposit import Deposit, deposit
from application.errors import IdempotencyKeyReused
from application.fingerprint import batch_fingerprint, fingerprint, legacy_fingerprint
from application.ports import IdempotencyRecord, StoredResponse
from application.recognize import Recognize
from application.reserve import Reserve, reserve
from application.runner import Command, MoneyMovements
from application.transfer import Transfer
from application.withdraw import Withdraw
from tests.helpers import keep, rub

# The canonical form (3cb6e41 on): change a command's form only with a new version.
CANONICAL: list[tuple[Command, tuple[object, ...], str]] = [
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

# The form 8b1b5a2 and earlier stored (`sha256(f"{use_case}:{command!r}")`), each hash
# printed by 8b1b5a2's own `application.runner.fingerprint` for that command.
LEGACY: list[tuple[Command, str]] = [
    (
        Deposit(1, rub("150.25"), "Card top-up"),
        "d74f5a9950526a29a471d8c3c81818fe3f9c462bc123697275c2f46f81dbeada",
    ),
    (Deposit(7, rub("0.01")), "77c6d9a675bab5151e025809d5e624d47445937d4e68142d252975065eda608f"),
    (
        Deposit(3, rub("99.99"), "Пополнение картой"),
        "104ab36047dad5fc09beea85c3f9a5905b4e3beee103c3f2cc60b0bb4c8f5afd",
    ),
    (Withdraw(1, rub("10")), "b453a3920c88c4302ffa33f1546eed9886e176f6e44267187ee8b7b35533be0d"),
    (
        Withdraw(2, rub("3.50"), "Payout \"q\" \\ 'x'"),
        "ee44de9a6fb9f688c258eaac98a2b092e464ae0d79c25d168b77c7a2f4cb5289",
    ),
    (Transfer(1, 2, rub("40")), "1533d6f0283d00483995d85376f222ef753e98ac21fbc90cf6d08dc67a0cacb6"),
    (
        Transfer(3, 4, rub("1.05"), "rent"),
        "0c72ae7fd70e223597080abf6c77cc99624754df1f250de6f736a4696407f270",
    ),
    (
        Reserve(1, 5, 1001, rub("30")),
        "c2b2d8ddbed77e017be8718886b214af2d35659ed2ae0bb1335dc759d66b7bc9",
    ),
    (
        Reserve(2, 6, 1002, rub("12.34"), "Ad slot"),
        "9fb864a42d7c1e3b221cb9e61937b6ecdd5512ee5cfcc50cc127d06d22ae4021",
    ),
    (
        Reserve(4, 9, 77, rub("5"), "Заказ №77"),
        "425739679aaa5f5651923d920d1baaa8f1d754ef43f081a5e40049ed68f74ccd",
    ),
    (
        Recognize(1001, 1, 5, rub("25")),
        "4a54347a3db0f8714a964223a78a6511158cc502bc49462eda2782f4f692932a",
    ),
    (Cancel(1002, 1, 5), "e08355314b11b9cfccebf59777c8fe6acaae900bacc7d2ccfd29a810a9dceede"),
]

NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("command", "canonical", "prefix"), CANONICAL)
def test_the_canonical_form_is_pinned(
    command: Command, canonical: tuple[object, ...], prefix: str
) -> None:
    assert command.canonical() == canonical
    assert fingerprint(command).startswith(prefix), fingerprint(command)


@pytest.mark.parametrize(("command", "digest"), LEGACY)
def test_the_legacy_form_is_what_8b1b5a2_stored(command: Command, digest: str) -> None:
    assert legacy_fingerprint(command) == digest


def test_an_expiring_hold_and_a_client_batch_are_pinned_as_3cb6e41_stored_them() -> None:
    expiring = Reserve(2, 5, 77, rub("2.00"), expires_at=NOON)
    assert fingerprint(expiring) == (
        "9ace43154487e0a93cc2990440c0020c6b01e27072e5470a53a872efd0af9407"
    )
    assert legacy_fingerprint(expiring) is None  # 8b1b5a2 had no expiring holds
    operations: list[tuple[Command, str | None]] = [
        (Deposit(1, rub("10.00"), "payout file line 1"), "f7-1"),
        (Transfer(1, 2, rub("3.00")), None),
        (expiring, None),
    ]
    assert batch_fingerprint(False, operations) == (
        "1783399b2108c6c3df86b717094785c96490950288a38a08eb7bb1a6cb6c5ba5"
    )
    assert batch_fingerprint(True, operations) == (
        "649500ad2525564fe609cdbc52f633ae0fd83471e2493153ec5858a164a898db"
    )


def test_a_named_callers_request_is_its_form_then_at_and_its_name() -> None:
    """Pinned as written here (sha256 of the literal text), so a change of the form is
    seen; with no caller, the form is what it was before callers had names."""
    top_up = Deposit(1, rub("150.25"), "Card top-up")
    assert (
        fingerprint(top_up, "billing")
        == hashlib.sha256(b'["deposit",1,1,15025,"Card top-up"]@billing').hexdigest()
    )
    assert fingerprint(top_up, None) == fingerprint(top_up)
    assert fingerprint(top_up, "payouts") != fingerprint(top_up, "billing")
    operations: list[tuple[Command, str | None]] = [(top_up, "f7-1")]
    assert (
        batch_fingerprint(True, operations, "billing")
        == hashlib.sha256(
            b'["batch",1,true,[["deposit",1,1,15025,"Card top-up","f7-1"]]]@billing'
        ).hexdigest()
    )
    assert batch_fingerprint(True, operations, None) == batch_fingerprint(True, operations)


def test_no_description_and_an_empty_one_are_the_same_request() -> None:
    assert fingerprint(Deposit(1, rub("1"))) == fingerprint(Deposit(1, rub("1"), ""))
    assert fingerprint(Deposit(1, rub("1"))) != fingerprint(Deposit(1, rub("1"), "x"))
    assert fingerprint(Deposit(1, rub("1"))) != fingerprint(Withdraw(1, rub("1")))
    assert legacy_fingerprint(Deposit(1, rub("1"))) == legacy_fingerprint(Deposit(1, rub("1"), ""))


@pytest.mark.parametrize(
    ("use_case", "command", "other"),
    [
        (deposit, Deposit(1, rub("5")), Deposit(1, rub("6"))),
        (reserve, Reserve(1, 5, 1001, rub("30")), Reserve(1, 5, 1001, rub("31"))),
    ],
)
async def test_a_key_stored_under_the_legacy_fingerprint_still_replays(
    use_case: object, command: Command, other: Command
) -> None:
    store = InMemoryStore()
    stored = StoredResponse(201, b"the first answer")
    digest = legacy_fingerprint(command)
    assert digest is not None
    store.idempotency["before-deploy"] = IdempotencyRecord(digest, stored)
    movements = MoneyMovements(lambda: InMemoryMovementBatch(store))
    assert await movements.execute(use_case, command, keep, "before-deploy") == stored  # type: ignore[arg-type]
    with pytest.raises(IdempotencyKeyReused):
        await movements.execute(use_case, other, keep, "before-deploy")  # type: ignore[arg-type]
    assert store.accounts == {}  # replayed, not applied
