"""Credentials per route family: bearer JWTs for people, service keys for backends."""

from __future__ import annotations

import hmac

from aiohttp import web

from mana_credits_core.errors import Unauthenticated
from mana_credits_core.ports import Principal

from .errors import AdminRequired
from .keys import IDENTITY, PRINCIPAL, SETTINGS

MISSING_BEARER = "Missing or invalid Authorization header"
BAD_SERVICE_KEY = "Invalid or missing service key"


async def require_user(request: web.Request) -> Principal:
    """The verified caller of a user route (401 without a valid bearer token)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(MISSING_BEARER)
    principal = await request.app[IDENTITY].verify(token.strip())
    request[PRINCIPAL] = principal
    return principal


async def signed_in(request: web.Request) -> Principal | None:
    """The caller of a public route when it sends a valid bearer token, else None.

    A missing or bad token is no error here: the route answers anyone; only whom its
    limits count against changes."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        principal = await request.app[IDENTITY].verify(token.strip())
    except Unauthenticated:
        return None
    request[PRINCIPAL] = principal
    return principal


async def require_admin(request: web.Request) -> Principal:
    principal = await require_user(request)
    if not principal.is_admin:
        raise AdminRequired()
    return principal


def require_service(request: web.Request) -> str:
    """Check `X-Service-Key`; returns the calling app from `X-App-Id` (or `system`)."""
    presented = request.headers.get("X-Service-Key", "")
    try:
        candidate = presented.encode("ascii")
    except UnicodeEncodeError:
        raise Unauthenticated(BAD_SERVICE_KEY) from None
    # Compare against every key (no early exit), each in constant time.
    accepted = False
    for key in request.app[SETTINGS].service_keys:
        accepted |= hmac.compare_digest(candidate, key.encode())
    if not candidate or not accepted:
        raise Unauthenticated(BAD_SERVICE_KEY)
    app_id = request.headers.get("X-App-Id", "").strip()
    return app_id[:100] if app_id.isprintable() and app_id else "system"
