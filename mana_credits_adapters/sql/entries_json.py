"""History pages written as JSON by PostgreSQL, byte for byte what `entry_json` renders.

Rendering a page of 50 entries in Python (driver row parsing, `LedgerEntry`, timestamps
formatted, dicts, encoding) was most of the server's CPU time per history request.
Here PostgreSQL writes the page as one text value: strings through `to_json` (which
escapes as orjson does: `\\"`, `\\\\`, `\\b \\f \\n \\r \\t`, other control characters as
`\\u00xx`, everything else as is), integers as digits, timestamps by `to_char` in UTC
with their milliseconds truncated, as `isoformat(timespec="milliseconds")` truncates.

Metadata is the exception: `jsonb` prints its own spacing and number forms, so an entry
with metadata gets a placeholder (U+0001, which `to_json` always escapes, so it appears
nowhere else in the text) and its metadata comes beside the page, to be decoded and
encoded as the Python path does.
"""

from __future__ import annotations

import json

import orjson

PLACEHOLDER = "\x01"

_STAMP = '\'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"\''
_ORDER = "ORDER BY created_at DESC, id DESC"
# SQL NULL, or JSON null (SQLAlchemy's JSON type writes Python's None as the latter).
_NO_METADATA = "metadata IS NULL OR jsonb_typeof(metadata) = 'null'"


def _page(user_id: str, limit: str, offset: str) -> str:
    """The page's text and its metadata values, for one user's page."""
    return (
        "SELECT '[' || string_agg("
        "'{\"id\":' || to_json(id)::text"
        " || ',\"userId\":' || to_json(user_id)::text"
        " || ',\"type\":' || to_json(type)::text"
        " || ',\"status\":' || to_json(status)::text"
        " || ',\"amount\":' || amount::text"
        " || ',\"balanceBefore\":' || balance_before::text"
        " || ',\"balanceAfter\":' || balance_after::text"
        " || ',\"appId\":' || to_json(app_id)::text"
        " || ',\"description\":' || to_json(description)::text"
        f" || ',\"metadata\":' || CASE WHEN {_NO_METADATA} THEN 'null' ELSE chr(1) END"
        " || ',\"idempotencyKey\":' || coalesce(to_json(idempotency_key)::text, 'null')"
        f" || ',\"createdAt\":\"' || to_char(created_at AT TIME ZONE 'UTC', {_STAMP})"
        ' || \'","completedAt":\' || coalesce('
        f"'\"' || to_char(completed_at AT TIME ZONE 'UTC', {_STAMP}) || '\"', 'null')"
        f" || '}}', ',' {_ORDER}) || ']' AS body,"
        f" array_agg(metadata::text {_ORDER}) FILTER (WHERE NOT ({_NO_METADATA})) AS metadata"
        f" FROM (SELECT * FROM credits.transactions WHERE user_id = {user_id}"
        f" {_ORDER} LIMIT {limit} OFFSET {offset}) page"
    )


PG_HISTORY_JSON = _page("%s", "%s", "%s")
# The same for several pages (`DriverReads.batched`): one row per page, tagged with its
# position among them.
PG_HISTORIES_JSON = (
    "SELECT q.n, page.body, page.metadata"
    " FROM unnest(%s::text[], %s::int8[], %s::int8[]) WITH ORDINALITY"
    " AS q(user_id, size, skip, n)"
    f" CROSS JOIN LATERAL ({_page('q.user_id', 'q.size', 'q.skip')}) page"
)


def history_page(text: str | None, metadata: list[str] | None) -> bytes | None:
    """The page's body from `PG_HISTORY_JSON`'s row: the text with each placeholder
    replaced by its entry's metadata, encoded as `encode` does. None when a metadata
    value needs the standard library's encoder (orjson refuses it), which the Python
    path then applies to the whole page."""
    if text is None:
        return b"[]"  # no entry on this page
    if not metadata:
        return text.encode()
    parts = text.split(PLACEHOLDER)
    pieces = [parts[0]]
    try:
        for value, rest in zip(metadata, parts[1:], strict=True):
            # Decoded as the driver decodes `jsonb` (json.loads), encoded as `encode` does.
            pieces.append(orjson.dumps(json.loads(value)).decode())
            pieces.append(rest)
    except orjson.JSONEncodeError:
        return None
    return "".join(pieces).encode()
