"""Route tables: each module lists its routes once, for the router and for OpenAPI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
