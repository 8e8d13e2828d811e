"""`/g/<code>`: the page a gift's `shortUrl` opens.

It shows what `GET /api/v1/gifts/<code>` shows (never an e-mail address) and how to
redeem the gift. Unknown codes answer a 404 page and count against the same
failed-lookup limit as the JSON route, so the page is no side door for guessing codes.
"""

from __future__ import annotations

import html
from datetime import UTC

from aiohttp import web

from mana_credits_core.errors import GiftNotFound, InvalidInput, RateLimited
from mana_credits_core.gifts import GiftCode, GiftStatus, GiftType

from ..keys import GIFT_LIMITER, SERVICES
from ..models import iso
from . import Route
from .gifts import client_of

PAGE = """<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<body style="font-family: sans-serif; max-width: 32em; margin: 4em auto; padding: 0 1em">
{body}</body></html>"""

WHY_NOT = {
    GiftStatus.DEPLETED: "This gift has already been redeemed.",
    GiftStatus.EXPIRED: "This gift has expired; its credits went back to the giver.",
    GiftStatus.CANCELLED: "The giver cancelled this gift; its credits went back to them.",
    GiftStatus.REFUNDED: "This gift was refunded to the giver.",
}


def page(title: str, body: str, status: int = 200) -> web.Response:
    text = PAGE.format(title=html.escape(title), body=body)
    # Nothing on the page needs a script, a frame or another origin.
    headers = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
    return web.Response(text=text, status=status, content_type="text/html", headers=headers)


def describe(gift: GiftCode) -> str:
    e = html.escape
    parts = [
        f'<h1><span id="credits">{gift.total_credits}</span>'
        f" {counted_word(gift.total_credits)} from {e(gift.creator_name)}</h1>"
    ]
    if gift.message:
        parts.append(f'<blockquote id="message">{e(gift.message)}</blockquote>')
    parts.append(f'<p>Code <b id="code">{e(gift.code)}</b> — status <b id="status">'
                 f"{e(gift.status.value)}</b>.</p>")  # fmt: skip
    if gift.status != GiftStatus.ACTIVE:
        parts.append(f'<p id="redeemable">{e(WHY_NOT[gift.status])}</p>')
        return "\n".join(parts)
    parts.append(
        f'<p id="redeemable">Redeemable until <time datetime="{iso(gift.expires_at)}">'
        f"{gift.expires_at.astimezone(UTC):%d %B %Y, %H:%M} UTC</time>.</p>"
        "<h2>How to redeem it</h2>"
        f"<p>Sign in to a Mana app and enter the code <b>{e(gift.code)}</b> where it asks "
        "for a gift code; the credits go to your account at once.</p>"
    )
    if gift.type == GiftType.PERSONALIZED:
        parts.append(
            "<p>This gift is for one person: only the account with the e-mail address the "
            "giver chose can redeem it, and it is credited automatically when that address "
            "signs up.</p>"
        )
    parts.append(
        "<p>From a program: <code>POST /api/v1/gifts/"
        f"{e(gift.code)}/redeem</code> with your bearer token.</p>"
    )
    return "\n".join(parts)


async def gift_page(request: web.Request) -> web.Response:
    limiter, client = request.app[GIFT_LIMITER], client_of(request)
    try:
        limiter.check(client)
        gift = await request.app[SERVICES].gifts.info(request.match_info["code"])
    except RateLimited:
        return page("Too many attempts", "<h1>Too many attempts</h1><p>Try again later.</p>", 429)
    except (GiftNotFound, InvalidInput):  # a malformed code is no gift either
        limiter.failed(client)  # as GET /api/v1/gifts/<code>: misses are what guessing is
        body = "<h1>No such gift</h1><p>Check the link or the code you were given.</p>"
        return page("Gift not found", body, 404)
    return page(f"A gift of {gift.total_credits} credits", describe(gift))


ROUTES = [
    Route(
        "GET",
        "/g/{code}",
        gift_page,
        "The page of a gift's shortUrl (HTML; misses are rate-limited like gift info)",
        "none",
    ),
]


def counted_word(count: int) -> str:
    """The word after a number of credits: "1 credit", "25 credits"."""
    return "credit" if count == 1 else "credits"
