"""JSON response bodies, encoded by orjson.

The standard library's encoder (aiohttp's default) walks every value in Python; orjson
encodes the same data in C, several times faster, and writes UTF-8 bytes directly, where
`json.dumps` made a `str` that aiohttp then encoded again. The bodies are the same JSON
values: same keys, same order, same numbers; only the insignificant whitespace differs
(no space after `:` and `,`) and text outside ASCII is sent as UTF-8 instead of `\\u`
escapes, both of which every JSON parser reads the same.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web

CONTENT_TYPE = "application/json"


def dumps(value: Any) -> bytes:
    """`value` as JSON in UTF-8. Raises `TypeError` for what JSON cannot hold."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        # orjson stops at 64-bit integers; a client's free-form metadata may hold a larger
        # one (up to 19 digits are accepted), which the standard library encodes exactly.
        return json.dumps(value).encode()


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """`data` as a JSON response, `Content-Type: application/json; charset=utf-8` as
    aiohttp's `json_response` sends it."""
    return web.Response(body=dumps(data), status=status, content_type=CONTENT_TYPE, charset="utf-8")
