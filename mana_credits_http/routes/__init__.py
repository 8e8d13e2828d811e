"""Route tables: each module lists its routes once, for the router and for OpenAPI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from ..keys import Handler

Auth = Literal["none", "user", "admin", "service", "stripe-signature"]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    auth: Auth
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    many: bool = False
    status: int = 200
    # What a success answers: JSON (described by `response`), or a page (text/html)...
    content_type: str = "application/json"


def add_route(app: web.Application, method: str, path: str, handler: Handler) -> None:
    """Serve `handler` at `method` `path`; a GET route answers HEAD too, with the GET's
    status and headers and no body (RFC 9110, 9.3.2: probes and caches rely on it)."""
    if method == "GET":
        app.router.add_get(path, handler, allow_head=True)
    else:
        app.router.add_route(method, path, handler)
