"""CORS for the web app's origins, with credentials, as the previous service allowed."""

from __future__ import annotations

import functools

from aiohttp import web

from .errors import envelope
from .keys import SETTINGS, Handler

ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, X-Service-Key, X-App-Id, X-Request-Id"


@functools.lru_cache(maxsize=4)
def allowed_origins(setting: str) -> frozenset[str]:
    """`CORS_ORIGINS` (comma-separated) as a set, parsed once rather than
    on every browser request (each sends `Origin`)."""
    return frozenset(origin.strip() for origin in setting.split(",") if origin.strip())


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    allowed = origin is not None and origin in allowed_origins(request.app[SETTINGS].cors_origins)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response: web.StreamResponse = (
            web.Response(status=204)
            if allowed
            else envelope(403, "Origin not allowed (CORS_ORIGINS)", "forbidden")
        )
    else:
        response = await handler(request)
    if allowed and origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    response.headers.add("Vary", "Origin")
    return response
