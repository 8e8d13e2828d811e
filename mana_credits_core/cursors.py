"""Opaque cursors for keyset pages of a user's history."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from .errors import InvalidInput
from .ledger import LedgerEntry


def encode_cursor(entry: LedgerEntry) -> str:
    raw = f"{entry.created_at.isoformat()}|{entry.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(created_at, id) of the last entry seen. Raises `InvalidInput` (field `cursor`)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        when, entry_id = base64.urlsafe_b64decode(padded).decode().split("|", 1)
        at = datetime.fromisoformat(when)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise InvalidInput("cursor", "cursor is malformed") from exc
    if at.tzinfo is None:
        raise InvalidInput("cursor", "cursor is malformed")
    return at, entry_id
