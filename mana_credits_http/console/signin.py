"""Signing in to the console (a single-use link, or an admin JWT) and out."""

from __future__ import annotations

import re

from aiohttp import web

from mana_credits_core.errors import SignInRefused, Unauthenticated

from ..keys import IDENTITY, SERVICES
from .session import check_csrf, sign_in, sign_out
from .views import refused, render

BAD_FORM = "This form has expired or did not come from the console: reload the page and try again."
LINK_REFUSED = (
    "This sign-in link is unknown, used or expired: each works once, for 10 minutes. "
    "Ask for a new one (mana-credits console link --operator NAME)."
)


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    return await render(request, "sign_in.html", "Sign in")


async def sign_in_with_token(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    if not await check_csrf(request, form):
        return await refused(request, "Refused", BAD_FORM, 403)
    token = form.get("token")
    token = token.strip() if isinstance(token, str) else ""
    if not token:
        return await render(
            request, "sign_in.html", "Sign in", 400, error="Paste an admin access token."
        )
    try:
        principal = await request.config_dict[IDENTITY].verify(token)
    except Unauthenticated:
        return await refused(
            request,
            "Sign-in refused",
            "This token is not valid (expired, or not signed by the auth service).",
            401,
        )
    if not principal.is_admin:
        return await refused(
            request, "Sign-in refused", "This token's account is not an admin.", 403
        )
    await sign_in(request, principal.email or principal.user_id, "token")
    raise web.HTTPSeeOther("/console")


NOT_A_LINK = "This is not a sign-in link: check that it was copied whole."
# What `secrets.token_urlsafe` makes (43 characters for the 32 bytes of a link).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}")


def link_token(request: web.Request) -> str | None:
    """The link's token, None when it cannot be one: the path is decoded, so a crafted
    `..%2Fsign-out` would otherwise make the Sign in button post elsewhere."""
    token = request.match_info["token"]
    return token if _TOKEN.fullmatch(token) else None


async def link_page(request: web.Request) -> web.StreamResponse:
    # Only a POST redeems the link: a mail scanner or link preview fetching it with
    # GET uses nothing up.
    token = link_token(request)
    if token is None:
        return await refused(request, "Sign-in refused", NOT_A_LINK, 404)
    return await render(request, "link.html", "Sign in", token=token)


async def sign_in_with_link(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    if not await check_csrf(request, form):
        return await refused(request, "Refused", BAD_FORM, 403)
    token = link_token(request)
    if token is None:
        return await refused(request, "Sign-in refused", NOT_A_LINK, 404)
    try:
        operator = await request.config_dict[SERVICES].console.redeem_link(token)
    except SignInRefused:
        return await refused(request, "Sign-in refused", LINK_REFUSED, 403)
    await sign_in(request, operator, "link")
    raise web.HTTPSeeOther("/console")


async def sign_out_now(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    if not await check_csrf(request, form):
        return await refused(request, "Refused", BAD_FORM, 403)
    await sign_out(request)
    raise web.HTTPSeeOther("/console/sign-in")


ROUTES = [
    ("GET", "/sign-in", sign_in_page),
    ("POST", "/sign-in", sign_in_with_token),
    ("GET", "/link/{token}", link_page),
    ("POST", "/link/{token}", sign_in_with_link),
    ("POST", "/sign-out", sign_out_now),
]
