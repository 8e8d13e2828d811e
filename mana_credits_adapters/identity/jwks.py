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
from cryptography.hazmat.primitives import serialization

from mana_credits_core.errors import Unauthenticated
from mana_credits_core.ports import Principal
from mana_credits_core.validation import MAX_USER_ID, one_line

log = logging.getLogger("mana_credits.identity")

JwksSource = Callable[[], Awaitable[Mapping[str, Any]]]
ALGORITHMS = ["EdDSA"]  # pinned: `none`, HS256-with-a-public-key and friends never verify
MAX_TOKEN_LENGTH = 8192


SCHEDULED_WAIT = 0.25
"""Seconds a request waits for a scheduled key-set refresh before it goes on with the
keys at hand (the refresh finishes in the background)."""


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


# A fresh copy of the key set is fetched this often, so a key the issuer withdraws
# stops verifying within this many seconds (`MANA_CREDITS_JWKS_REFRESH_INTERVAL`).
REFRESH_INTERVAL_SECONDS = 300.0
# While the JWKS cannot be fetched, the last key set fetched is trusted this much longer
# than its refresh interval; then every token is refused until a fetch succeeds.
STALE_GRACE_SECONDS = 3600.0


class JwksVerifier:
    """An `IdentityVerifier` for the auth service's tokens.

    Checks: algorithm EdDSA, signature by a key of the JWKS, `iss` exactly the issuer,
    `aud`, `exp` and `sub` present, small leeway. The key set is fetched again once it
    is `refresh_interval` seconds old, and an unknown `kid` fetches it too; either way at
    most one fetch is in flight (the others wait for it) and at most one is started per
    `refetch_cooldown` seconds. A key no longer published stops verifying, and tokens
    it verified are forgotten. A failed fetch keeps the last key set until it is
    `refresh_interval + stale_grace` seconds old.
    """

    def __init__(
        self,
        issuer: str,
        source: JwksSource,
        *,
        audience: str = "mana",
        leeway: float = 30.0,
        refetch_cooldown: float = 30.0,
        refresh_interval: float = REFRESH_INTERVAL_SECONDS,
        stale_grace: float = STALE_GRACE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ) -> None:
        """Durations in seconds; `monotonic` times the key set, `wallclock` (seconds
        since the epoch) the remembered tokens' expiry."""
        self.issuer = issuer
        self._source = source
        self._audience = audience
        self._leeway = leeway
        self._interval = refresh_interval
        self._cooldown = min(refetch_cooldown, refresh_interval)
        self._trusted_for = refresh_interval + stale_grace
        self._monotonic = monotonic
        self._keys: dict[str, Any] = {}
        self._attempted_at: float | None = None  # the last fetch started
        self._loaded_at: float | None = None  # the last fetch that gave a key set
        self._lock = asyncio.Lock()
        self._scheduled: asyncio.Future[None] | None = None  # a refresh left running
        self.fetches = 0
        self._wallclock = wallclock
        self._cache_size = cache_size
        # token -> (principal, when it expires (wallclock), kid, the key that verified it)
        self._verified: dict[str, tuple[Principal, float, str, Any]] = {}

    async def verify(self, token: str) -> Principal:
        await self._keep_current()
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, expires, kid, key = remembered
            if self._wallclock() < expires and self._keys.get(kid) is key:
                return principal
            del self._verified[token]
        principal, expires, kid, key = await self._verify(token)
        if len(self._verified) >= self._cache_size:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = (principal, expires, kid, key)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float, str, Any]:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated()
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, RecursionError) as exc:
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
        # Compared here too, exactly: PyJWT 2.10.0 took any part of the issuer for it.
        if claims.get("iss") != self.issuer:
            raise Unauthenticated()
        return principal_from(claims), float(claims["exp"]) + self._leeway, kid, key

    def _may_fetch(self) -> bool:
        attempted = self._attempted_at
        return attempted is None or self._monotonic() - attempted >= self._cooldown

    def _due(self) -> bool:
        loaded = self._loaded_at
        return loaded is None or self._monotonic() - loaded >= self._interval

    async def _keep_current(self) -> None:
        """Fetch the key set when it is due (cheap when it is not); forget it when it
        has gone unrefreshed for too long."""
        if not self._due():
            return
        if self._may_fetch():
            fetch = self._fetch_once(lambda: self._due() and self._may_fetch())
            if not self._keys:
                await fetch  # nothing to verify with meanwhile
            else:
                # A scheduled refresh while keys are at hand: wait for it briefly, then
                # go on with them and let it finish on its own, so that an auth service
                # that hangs costs one request SCHEDULED_WAIT, not the fetch timeout.
                self._scheduled = asyncio.ensure_future(fetch)
                await asyncio.wait({self._scheduled}, timeout=SCHEDULED_WAIT)
        loaded = self._loaded_at
        if self._keys and loaded is not None and self._monotonic() - loaded >= self._trusted_for:
            log.error(
                "JWKS not fetched for %.0f s: its %d keys are no longer trusted",
                self._monotonic() - loaded,
                len(self._keys),
            )
            self._keys = {}
            self._verified.clear()

    async def _key(self, kid: str) -> Any:
        if kid not in self._keys:
            await self._fetch_once(lambda: kid not in self._keys and self._may_fetch())
        if kid not in self._keys:
            raise Unauthenticated()
        return self._keys[kid]

    async def _fetch_once(self, wanted: Callable[[], bool]) -> None:
        """Fetch the key set unless, once the fetch in flight (if any) is over, it is no
        longer `wanted`: concurrent callers share one fetch."""
        async with self._lock:
            if wanted():
                self._attempted_at = self._monotonic()
                await self._refresh()

    async def _refresh(self) -> None:
        self.fetches += 1
        try:
            document = await self._source()
            fetched = parse_jwks(document)
        except (aiohttp.ClientError, TimeoutError, ValueError, TypeError, RecursionError) as exc:
            log.warning("JWKS fetch failed; keeping %d cached keys: %s", len(self._keys), exc)
            return
        # A key published unchanged keeps its object, and so the tokens it verified.
        keys = {
            kid: self._keys[kid] if same_key(self._keys.get(kid), key) else key
            for kid, key in fetched.items()
        }
        withdrawn = [kid for kid, key in self._keys.items() if keys.get(kid) is not key]
        self._keys = keys
        self._loaded_at = self._monotonic()
        if withdrawn:
            log.info("JWKS no longer publishes keys %s: their tokens are refused", withdrawn)
            self._verified = {
                token: entry
                for token, entry in self._verified.items()
                if keys.get(entry[2]) is entry[3]
            }


def same_key(old: Any, new: Any) -> bool:
    """Whether two Ed25519 public keys are the same key."""
    if old is None:
        return False
    raw = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    same: bool = old.public_bytes(*raw) == new.public_bytes(*raw)
    return same


def parse_jwks(document: Mapping[str, Any]) -> dict[str, Any]:
    """The Ed25519 public keys of a JWKS document, by `kid`. Raises `ValueError` when
    the document is not an object with a key list."""
    found: dict[str, Any] = {}
    if not isinstance(document, Mapping):
        raise ValueError("JWKS is not a JSON object")
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
    """The caller a verified token's claims name. Raises `Unauthenticated` when `sub` is
    not a user id this service takes (a non-blank string of at most 255 characters, one
    line without control characters) or a time claim is not a NumericDate (RFC 7519
    section 2: a JSON number; PyJWT also takes a string of digits)."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_USER_ID or not one_line(sub):
        raise Unauthenticated()
    for claim in ("exp", "nbf", "iat"):
        moment = claims.get(claim)
        if claim in claims and (isinstance(moment, bool) or not isinstance(moment, int | float)):
            raise Unauthenticated()
    email, role, name = claims.get("email"), claims.get("role"), claims.get("name")
    return Principal(
        user_id=sub,
        # An address that no store could keep or no page could show is no address.
        email=email if isinstance(email, str) and one_line(email) else None,
        role=role if isinstance(role, str) and role else "user",
        name=name if isinstance(name, str) and name else None,
    )
