"""Verify EdDSA JWTs from the auth service against its JWKS (pyjwt)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import jwt

from mana_credits_core.errors import Unauthenticated
from mana_credits_core.ports import Principal

log = logging.getLogger("mana_credits.identity")

JwksSource = Callable[[], Awaitable[Mapping[str, Any]]]
ALGORITHMS = ["EdDSA"]  # pinned: `none`, HS256-with-a-public-key and friends never verify
MAX_TOKEN_LENGTH = 8192


class HttpJwks:
    """Fetches `{auth_url}/api/auth/jwks` with a short timeout; never any other URL."""

    def __init__(self, auth_url: str, timeout: float = 5.0) -> None:
        self.url = auth_url.rstrip("/") + "/api/auth/jwks"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self) -> Mapping[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.get(self.url) as response:
            response.raise_for_status()
            body: Mapping[str, Any] = await response.json(content_type=None)
            return body

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class JwksVerifier:
    """An `IdentityVerifier` for the auth service's tokens.

    Checks: algorithm EdDSA, signature by a key of the JWKS, `iss`, `aud`, `exp` and
    `sub` present, small leeway. Keys are cached; an unknown `kid` refetches the JWKS at
    most once per cooldown (single flight), and cached keys keep working while the JWKS
    endpoint is down.
    """

    def __init__(
        self,
        issuer: str,
        source: JwksSource,
        *,
        audience: str = "mana",
        leeway: float = 30.0,
        refetch_cooldown: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ) -> None:
        self.issuer = issuer
        self._source = source
        self._audience = audience
        self._leeway = leeway
        self._cooldown = refetch_cooldown
        self._monotonic = monotonic
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0
        self._wallclock = wallclock
        self._cache_size = cache_size
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def verify(self, token: str) -> Principal:
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, expires = remembered
            if self._wallclock() < expires:
                return principal
            del self._verified[token]
        principal, expires = await self._verify(token)
        if len(self._verified) >= self._cache_size:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = (principal, expires)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated() from exc
        kid = header.get("kid")
        if header.get("alg") not in ALGORITHMS or not isinstance(kid, str) or len(kid) > 256:
            raise Unauthenticated()
        key = await self._key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated() from exc
        # `exp` is required and was checked (a number) by `jwt.decode`.
        return principal_from(claims), float(claims["exp"]) + self._leeway

    async def _key(self, kid: str) -> Any:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if kid in self._keys:  # fetched by the request we waited for
                return self._keys[kid]
            now = self._monotonic()
            if self._fetched_at is not None and now - self._fetched_at < self._cooldown:
                raise Unauthenticated()
            self._fetched_at = now
            await self._refresh()
        if kid not in self._keys:
            raise Unauthenticated()
        return self._keys[kid]

    async def _refresh(self) -> None:
        self.fetches += 1
        try:
            document = await self._source()
            keys = parse_jwks(document)
        except (aiohttp.ClientError, TimeoutError, ValueError, TypeError) as exc:
            log.warning("JWKS fetch failed; keeping %d cached keys: %s", len(self._keys), exc)
            return
        self._keys = keys


def parse_jwks(document: Mapping[str, Any]) -> dict[str, Any]:
    """The Ed25519 public keys of a JWKS document, by `kid`."""
    found: dict[str, Any] = {}
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("JWKS has no key list")
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "OKP" or "d" in entry:
            continue
        if entry.get("crv") != "Ed25519" or not isinstance(entry.get("kid"), str):
            continue
        try:
            found[entry["kid"]] = jwt.PyJWK(json.loads(json.dumps(entry)), "EdDSA").key
        except jwt.PyJWTError:
            continue
    return found


def principal_from(claims: Mapping[str, Any]) -> Principal:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > 255:
        raise Unauthenticated()
    email, role, name = claims.get("email"), claims.get("role"), claims.get("name")
    return Principal(
        user_id=sub,
        email=email if isinstance(email, str) else None,
        role=role if isinstance(role, str) and role else "user",
        name=name if isinstance(name, str) and name else None,
    )
