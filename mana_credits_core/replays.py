"""When a replayed idempotency key is the same request, and when it is another one.

A key names one request. A replay (the same key again for the same user) answers the
original entry only if it asks for exactly what the original asked for: the same
operation (debit, refund, grant…), amount, app, description and metadata. Any
difference is `IdempotencyKeyReused` (409): answering the original would tell the
caller that their different request was carried out. This is what the IETF
Idempotency-Key draft and Stripe do with a key reused with other parameters.

Metadata is compared as JSON values: key order and the text's whitespace never
matter (the stores keep parsed JSON), numbers compare by value (`1` and `1.0` are one
JSON number) but a boolean is never a number. Absent, `null` and `{}` all mean "no
metadata" and are the same request.

A credit's replay also compares the lot the original created: the same priority, and
the same expiry, either the same moment or the same term after the grant (within a
second), so that a command saying "expires in 30 days" replayed later is the same
request while one saying "10 days" is another.

A priced debit (an operation of the price list) is compared by what its caller sent
(`PricedRequest`): the operation and quantity instead of the amount, which depends on
what the user had accrued (and the price then), and the app and description only where
the caller gave them, since otherwise the price list fills them in and a change to it
(a new name, another app, a retirement) between the two must not turn the retry of a
charged request into a refusal. Metadata is compared without the `pricing` record the
service added. A key that named an operation, replayed with an amount (or the other way
round), differs in `operation`.

The comparison runs only when a key is found (a replay), never on a first request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .errors import IdempotencyKeyReused
from .ledger import Credit, Debit, LedgerEntry, TransactionType
from .lots import Lot
from .pricing import PRICING_KEY

SAME_TERM = timedelta(seconds=1)


def same_json(a: object, b: object) -> bool:
    """Whether `a` and `b`, parsed JSON, are the same JSON value (see the module)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def same_metadata(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Metadata as JSON values, absent, `null` and `{}` alike."""
    return same_json(a or {}, b or {})


def same_expiry(lot: Lot, request: Credit) -> bool:
    """Whether `request` asks for the expiry `lot` got: never for both, the same
    moment, or the same term after the grant (within `SAME_TERM`)."""
    if lot.expires_at is None or request.expires_at is None:
        return lot.expires_at is None and request.expires_at is None
    if lot.expires_at == request.expires_at:
        return True
    term = lot.expires_at - lot.created_at
    return abs(term - (request.expires_at - request.now)) <= SAME_TERM


@dataclass(frozen=True, slots=True)
class PricedRequest:
    """What a caller sent for a debit by operation, as a replay is compared: the app
    and description None where the caller left them to the price list."""

    operation: str
    quantity: int
    app_id: str | None
    description: str | None
    metadata: Mapping[str, Any] | None


def check_replay(original: LedgerEntry, request: Debit | Credit, lot: Lot | None = None) -> None:
    """Raise `IdempotencyKeyReused` unless `request` (whose key found `original`)
    asks for exactly what `original` did; for a credit, `lot` is the lot `original`
    created (None: none to compare, e.g. an imported entry). A debit by operation is
    compared by `check_priced_replay` instead.

    The error's details name the original's amount (credits) and app, and what differs
    (`differs`: among `operation`, `amount`, `appId`, `description`, `metadata`,
    `priority`, `expiresAt`).
    """
    metadata = dict(original.metadata or {})
    by_operation = metadata.pop(PRICING_KEY, None) is not None
    checks = [
        ("operation", original.type == request.type and not by_operation),
        ("amount", by_operation or abs(original.amount) == request.amount),
        ("appId", original.app_id == request.app_id),
        ("description", original.description == request.description),
        ("metadata", same_metadata(metadata, request.metadata)),
    ]
    differs = [name for name, same in checks if not same]
    if isinstance(request, Credit) and lot is not None:
        if lot.priority != request.priority:
            differs.append("priority")
        if not same_expiry(lot, request):
            differs.append("expiresAt")
    _refuse(original, differs)


def check_priced_replay(original: LedgerEntry, request: PricedRequest) -> None:
    """Raise `IdempotencyKeyReused` unless the debit by operation `request` (whose key
    found `original`) asks for what `original` did: the same operation and quantity,
    the same app and description where `request` gives them, the same metadata beside
    the `pricing` record. `differs` names among `operation`, `quantity`, `appId`,
    `description`, `metadata`."""
    metadata = dict(original.metadata or {})
    record = metadata.pop(PRICING_KEY, None)
    if original.type != TransactionType.USAGE or not isinstance(record, Mapping):
        _refuse(original, ["operation"])  # the key named an amount, or was no debit
        return
    checks = [
        ("operation", record.get("operation") == request.operation),
        ("quantity", record.get("quantity") == request.quantity),
        ("appId", request.app_id in (None, original.app_id)),
        ("description", request.description in (None, original.description)),
        ("metadata", same_metadata(metadata, request.metadata)),
    ]
    _refuse(original, [name for name, same in checks if not same])


def _refuse(original: LedgerEntry, differs: list[str]) -> None:
    if differs:
        raise IdempotencyKeyReused(
            original_amount=abs(original.amount),
            original_app_id=original.app_id,
            differs=differs,
        )
