"""Identity adapters: JWTs verified against a JWKS, and the local dev signing key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..settings import Settings
from .dev import SigningKey
from .jwks import HttpJwks, JwksVerifier


@asynccontextmanager
async def open_identity(settings: Settings) -> AsyncIterator[JwksVerifier]:
    """The verifier the settings call for: the auth service's JWKS, or the dev key."""
    if settings.dev_identity:
        key = SigningKey.load_or_create(settings.home)
        yield JwksVerifier(
            settings.issuer, key.source, refresh_interval=settings.jwks_refresh_interval_seconds
        )
        return
    jwks = HttpJwks(settings.auth_url)
    try:
        yield JwksVerifier(
            settings.issuer, jwks, refresh_interval=settings.jwks_refresh_interval_seconds
        )
    finally:
        await jwks.close()
