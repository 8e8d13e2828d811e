"""Ledger entries as the HTTP API's Transaction JSON, and the JSON encoding it answers in.

One definition for every store's history pages (`LedgerRepository.list_json`) and for the
server's single-entry answers. On PostgreSQL the database writes the same bytes itself
(`sql/entries_json.py`); tests/contract/test_history_json.py keeps the two identical.

orjson encodes in C, several times faster than the standard library's encoder, and
writes UTF-8 bytes directly. The bodies are the JSON values the standard library would
write: same keys, same order, same numbers; only the insignificant whitespace differs
(none after `:` and `,`), and text outside ASCII is UTF-8 instead of `\\u` escapes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from mana_credits_core.ledger import LedgerEntry


def encode(value: Any) -> bytes:
    """`value` as compact JSON in UTF-8. Raises `TypeError` for what JSON cannot hold."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        # orjson stops at 64-bit integers; a client's free-form metadata may hold a larger
        # one (up to 19 digits are accepted), which the standard library encodes exactly.
        return json.dumps(value).encode()


def iso(moment: datetime) -> str:
    """Timestamps as the previous service wrote them: UTC, milliseconds (truncated), `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entry_json(e: LedgerEntry) -> dict[str, Any]:
    """One entry in the Transaction shape (camelCase keys, in the contract's order)."""
    return {
        "id": e.id,
        "userId": e.user_id,
        "type": e.type.value,
        "status": e.status.value,
        "amount": e.amount,
        "balanceBefore": e.balance_before,
        "balanceAfter": e.balance_after,
        "appId": e.app_id,
        "description": e.description,
        "metadata": e.metadata,
        "idempotencyKey": e.idempotency_key,
        "createdAt": iso(e.created_at),
        "completedAt": None if e.completed_at is None else iso(e.completed_at),
    }


def entries_json(entries: Iterable[LedgerEntry]) -> bytes:
    """A history page's body: the entries as one JSON array, in UTF-8."""
    return encode([entry_json(e) for e in entries])
