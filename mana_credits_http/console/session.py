"""Console sessions: an encrypted, expiring cookie (aiohttp-session, Fernet) and CSRF.

The cookie is HttpOnly and SameSite=Lax, Secure when the console is reached over
https (or `BASE_URL` is https); it holds the operator's name, when they signed in and
the CSRF token every POST form must carry. Past `SESSION_SECONDS` it is refused twice
over: Fernet's own time-to-live and the sign-in time it carries.

Lax, not Strict: a link to a console page from another site (a support ticket) is a
cross-site navigation, which a Strict cookie does not follow; the page the browser
landed on then started a session of its own and its cookie replaced the operator's,
signing them out. Lax cookies come with such GET navigations only, never with a POST
from another site, and every POST is checked against the session's CSRF token anyway.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from aiohttp import web
from aiohttp_session import Session, get_session, new_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

SESSION_SECONDS = 8 * 3600
COOKIE = "mana_console"
CSRF_FIELD = "csrf"


class ConsoleCookies(EncryptedCookieStorage):
    """Encrypted cookies scoped to `/console`, Secure over https."""

    def __init__(self, key: bytes, *, https: bool) -> None:
        super().__init__(
            key,
            cookie_name=COOKIE,
            max_age=SESSION_SECONDS,
            path="/console",
            httponly=True,
            samesite="Lax",
        )
        self._https = https

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        # No await between setting the flag and writing the cookie: no other request
        # can see it in between.
        self.cookie_params["secure"] = True if self._https or request.secure else None
        await super().save_session(request, response, session)


async def csrf_token(request: web.Request) -> str:
    """The session's CSRF token, made (and the session started) on first use."""
    session = await get_session(request)
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


async def check_csrf(request: web.Request, form: Any) -> bool:
    """Whether `form` carries the session's CSRF token (compared in constant time)."""
    session = await get_session(request)
    expected = session.get(CSRF_FIELD)
    given = form.get(CSRF_FIELD)
    if not isinstance(expected, str) or not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


async def operator_of(request: web.Request) -> str | None:
    """The signed-in operator's name, or None (no session, or one past its age)."""
    session = await get_session(request)
    operator, since = session.get("operator"), session.get("since")
    if not isinstance(operator, str) or not isinstance(since, int | float):
        return None
    if time.time() - since > SESSION_SECONDS:
        session.invalidate()
        return None
    return operator


async def sign_in(request: web.Request, operator: str, how: str) -> None:
    """Start a new session for `operator` (a fresh CSRF token: none from before
    signing in carries over)."""
    session = await new_session(request)
    session["operator"] = operator
    session["how"] = how
    session["since"] = int(time.time())
    session[CSRF_FIELD] = secrets.token_urlsafe(32)


async def sign_out(request: web.Request) -> None:
    (await get_session(request)).invalidate()
