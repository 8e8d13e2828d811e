"""Rendering console pages: the shared context, headers and the sign-in guard."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from .session import csrf_token, operator_of

# No script, frame or other origin is needed; `Referrer-Policy` keeps a sign-in link's
# token out of the Referer header, `no-store` keeps pages out of shared caches.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

# The pages with a form for those not signed in (every other page's forms are shown
# to operators only, as is the sign-out form).
SIGN_IN_PAGES = frozenset({"sign_in.html", "link.html"})

Page = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


async def render(
    request: web.Request, template: str, title: str, status: int = 200, **context: Any
) -> web.Response:
    """`template` rendered (autoescaped) with the operator, the CSRF token and
    `context`; status `status`. A page shown to no operator carries a token (and starts
    a session) only when it has a form: a refusal of a form that came without the
    cookie (e.g. posted from another site) leaves the browser's session cookie alone."""
    operator = await operator_of(request)
    values = {
        "title": title,
        "operator": operator,
        "csrf": await csrf_token(request) if operator or template in SIGN_IN_PAGES else "",
        "error": None,
        "notice": None,
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, values, status=status)
    response.headers.update(HEADERS)
    return response


async def refused(request: web.Request, title: str, message: str, status: int) -> web.Response:
    """A page saying why something was refused (nothing was changed)."""
    return await render(request, "refused.html", title, status, message=message)


def signed_in(page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Run `page` with the operator's name; without a session, go to the sign-in page."""

    @wraps(page)
    async def guarded(request: web.Request) -> web.StreamResponse:
        operator = await operator_of(request)
        if operator is None:
            if request.method in ("GET", "HEAD"):
                raise web.HTTPSeeOther("/console/sign-in")
            return await refused(
                request, "Signed out", "Your session has ended: sign in again.", 401
            )
        return await page(request, operator)

    return guarded
