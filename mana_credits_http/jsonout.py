"""JSON response bodies, encoded by orjson (`mana_credits_adapters.entry_json.encode`:
why orjson, and how its bodies differ from the standard library's only in whitespace)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mana_credits_adapters.entry_json import encode

CONTENT_TYPE = "application/json"


def dumps(value: Any) -> bytes:
    """`value` as JSON in UTF-8. Raises `TypeError` for what JSON cannot hold."""
    return encode(value)


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """`data` as a JSON response, `Content-Type: application/json; charset=utf-8` as
    aiohttp's `json_response` sends it."""
    return json_body(dumps(data), status=status)


def json_body(body: bytes, *, status: int = 200) -> web.Response:
    """A body already encoded as JSON in UTF-8, sent as `json_response` sends one."""
    return web.Response(body=body, status=status, content_type=CONTENT_TYPE, charset="utf-8")
