"""What makes two requests under one Idempotency-Key the same request, across deploys.

A key's row stores the fingerprint of the request that first used it; a retry
replays the stored answer only if its own fingerprint matches. So a fingerprint
must come from the values a client sent, never from how today's code names or
prints them, and each form stays readable for as long as keys stored under it
live:

- the canonical form (since group commit): `command.canonical()`, a tuple
  `(operation, form version, *values)` as compact JSON, hashed;
- the legacy form (before group commit, 8b1b5a2 and earlier): the `repr` of the
  command dataclass as it was then, spelt out here field by field
  (`command.legacy()`), so a field added since (`Reserve.expires_at`) cannot
  change it.

A named caller's request (README, decision 53) is the canonical form followed by
`@` and the caller's name: the same key and values from another caller are another
request, refused (422), not answered with the first one's replay. A key stored with
no caller named (by an unnamed token, or before tokens had names) matches any
caller's retry of the same values, so a retry that spans the naming still replays
(`Job.same_request`).

tests/unit/test_fingerprint.py pins literal hashes of both forms, produced by
the code that wrote them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring_ascii
from typing import Any, Protocol

from domain.ledger import Metadata
from domain.money import Money


class Fingerprinted(Protocol):
    def canonical(self) -> tuple[object, ...]:
        """(operation, form version, *values): what makes two requests the same one."""
        ...

    def legacy(self) -> str | None:
        """The request as 8b1b5a2 fingerprinted it, or None if it had no such request."""
        ...


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _compact(form: object) -> str:
    """Compact ASCII JSON, as `json.dumps(form, separators=(",", ":"))` writes it;
    written out for the flat tuples of numbers and text every command's form is."""
    if isinstance(form, tuple):
        try:
            return "[" + ",".join([_SCALARS[type(item)](item) for item in form]) + "]"
        except KeyError:  # a nested form (metadata pairs)
            pass
    return json.dumps(form, separators=(",", ":"), ensure_ascii=True)


_SCALARS: dict[type, Callable[[Any], str]] = {
    int: int.__repr__,
    str: encode_basestring_ascii,
    bool: lambda flag: "true" if flag else "false",
    type(None): lambda _: "null",
}


def _of(form: str, caller: str | None) -> str:
    """A caller's name holds no `@` or JSON (`settings.CALLER_NAME`): after the form's
    closing bracket, nothing else can be read the same."""
    return _digest(form if caller is None else f"{form}@{caller}")


def fingerprint(command: Fingerprinted, caller: str | None = None) -> str:
    return _of(_compact(command.canonical()), caller)


def legacy_fingerprint(command: Fingerprinted) -> str | None:
    form = command.legacy()
    return _digest(form) if form is not None else None


def batch_fingerprint(
    atomic: bool,
    operations: Iterable[tuple[Fingerprinted, str | None]],
    caller: str | None = None,
) -> str:
    """A client batch: its flag and every operation's canonical form and key, in order."""
    form = ["batch", 1, atomic, [[*command.canonical(), key] for command, key in operations]]
    return _of(_compact(form), caller)


def tagged(form: tuple[object, ...], metadata: Metadata) -> tuple[object, ...]:
    """A command's canonical form with its metadata: version 1 as it was when there is
    none (keys stored before metadata existed keep matching), version 2 with it."""
    if not metadata:
        return form
    return (form[0], 2, *form[2:], [[key, value] for key, value in metadata])


def legacy_money(amount: Money) -> str:
    """`repr(Money)` as 8b1b5a2 printed it."""
    return f"Money(kopecks={amount.kopecks}, currency=<Currency.RUB: 'RUB'>)"
