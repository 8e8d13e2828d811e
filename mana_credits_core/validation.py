"""Argument rules shared by every use case; each failure names the field."""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import InvalidInput

MAX_CREDITS = 100_000_000
"""The largest amount one operation may move: one million euros in credits."""

MAX_METADATA_BYTES = 8_192
MAX_USER_ID = 255
MAX_APP_ID = 100
MAX_DESCRIPTION = 500
MAX_REASON = 200
MAX_IDEMPOTENCY_KEY = 255
MAX_PAGE_SIZE = 100

# C0 and C1 controls (tab and newline allowed in multi-line text); ids are one line, so
# the Unicode line and paragraph separators are not in them either.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ID_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def amount(value: object, field: str = "amount") -> int:
    """A credit amount: a true integer (not bool, float or str) in 1..MAX_CREDITS."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"{field} must be an integer")
    if value < 1:
        raise InvalidInput(field, f"{field} must be at least 1")
    if value > MAX_CREDITS:
        raise InvalidInput(field, f"{field} must be at most {MAX_CREDITS}")
    return value


def text(value: object, field: str, max_length: int, *, multiline: bool = True) -> str:
    """A required human text: non-blank, bounded, free of NUL and control characters."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"{field} must be a string")
    if not value.strip():
        raise InvalidInput(field, f"{field} must not be empty")
    if len(value) > max_length:
        raise InvalidInput(field, f"{field} must be at most {max_length} characters")
    pattern = _CONTROL if multiline else _ID_CONTROL
    if pattern.search(value):
        raise InvalidInput(field, f"{field} must not contain control characters")
    if not encodable(value):
        raise InvalidInput(field, f"{field} must be valid Unicode text")
    return value


def encodable(value: str) -> bool:
    """Whether `value` can be written as UTF-8: no lone surrogate, which no store keeps
    and no page shows (JSON's `\\ud800` escapes decode to one)."""
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def one_line(value: str) -> bool:
    """Whether `value` holds no control character, line breaks and tabs included, and no
    lone surrogate (as an id must not)."""
    return _ID_CONTROL.search(value) is None and encodable(value)


def optional_text(value: object, field: str, max_length: int) -> str | None:
    return None if value is None else text(value, field, max_length)


def identifier(value: object, field: str, max_length: int = MAX_USER_ID) -> str:
    """An opaque id from another system (user id, app id): one line, no controls."""
    return text(value, field, max_length, multiline=False)


def id_prefix(value: object, field: str) -> str:
    """An id or its first characters as a person types them: surrounding blanks
    dropped, lower-cased (ids are lower-case UUIDs). Raises `InvalidInput` (on
    `field`) when blank, not one line or longer than any identifier."""
    stripped = value.strip() if isinstance(value, str) else value
    return identifier(stripped, field).lower()


def match_limit(value: object) -> int:
    """How many prefix matches to return: an integer ≥ 1, quietly capped at one more
    than MAX_PAGE_SIZE (so a caller can tell a page of matches from more)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("limit", "limit must be an integer")
    if value < 1:
        raise InvalidInput("limit", "limit must be at least 1")
    return min(value, MAX_PAGE_SIZE + 1)


# The service's own entries carry keys in these forms (a period's charge `sync:<user>:
# <period start>`, a gift's `gift:<id>` and `gift-return:<id>`, a purchase's
# `purchase:<id>`; the old service's too): a client key of the same form would find
# that entry, or be found in its place (a Cloud Sync period "paid" by a debit of one
# credit), so clients may not use them. Newer keys hold U+001F, which no client key may.
RESERVED_KEY_PREFIXES = ("sync:", "gift:", "gift-return:", "purchase:")


def idempotency_key(value: object) -> str | None:
    """A client's idempotency key: one line of at most `MAX_IDEMPOTENCY_KEY` characters,
    not in a form the service's own entries use (`RESERVED_KEY_PREFIXES`); None stays
    None. Raises `InvalidInput` (field `idempotencyKey`)."""
    if value is None:
        return None
    key = identifier(value, "idempotencyKey", MAX_IDEMPOTENCY_KEY)
    if key.startswith(RESERVED_KEY_PREFIXES):
        raise InvalidInput(
            "idempotencyKey",
            "idempotencyKey must not start with "
            + ", ".join(RESERVED_KEY_PREFIXES)
            + " (the service's own entries use those keys), choose another key",
        )
    return key


def metadata(value: object) -> dict[str, Any] | None:
    """Free-form JSON object attached to an entry: finite numbers, bounded size."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise InvalidInput("metadata", "metadata must be a JSON object")
    if _depth(value) > MAX_METADATA_DEPTH:
        raise InvalidInput(
            "metadata", f"metadata must be nested at most {MAX_METADATA_DEPTH} levels"
        )
    try:
        encoded = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("metadata", "metadata must be plain, finite JSON") from exc
    if "\\u0000" in encoded:
        raise InvalidInput("metadata", "metadata must not contain NUL characters")
    try:
        size = len(encoded.encode())
    except UnicodeEncodeError:  # a lone surrogate, in a key or a value
        raise InvalidInput("metadata", "metadata must be valid Unicode text") from None
    if size > MAX_METADATA_BYTES:
        raise InvalidInput("metadata", f"metadata must be at most {MAX_METADATA_BYTES} bytes")
    parsed: dict[str, Any] = json.loads(encoded)
    return parsed


MAX_METADATA_DEPTH = 31
"""Levels of arrays and objects in metadata (the object itself is one): what a request
body nested at most 32 levels can carry, so the library and the server agree."""


def _depth(value: object) -> int:
    """Nesting levels of arrays and objects, counted without recursion (a value nested
    deeper than the interpreter's stack is refused, not a RecursionError)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        )
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_METADATA_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def page_size(value: object, default: int = 50) -> int:
    """A page size: integer ≥ 1, quietly capped at MAX_PAGE_SIZE."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("limit", "limit must be an integer")
    if value < 1:
        raise InvalidInput("limit", "limit must be at least 1")
    return min(value, MAX_PAGE_SIZE)


def offset(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput("offset", "offset must be a non-negative integer")
    if value > 10_000_000:
        raise InvalidInput("offset", "offset is too large; use the cursor")
    return value
