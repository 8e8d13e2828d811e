"""The console's pages: user search, a user's page with its grant form, and
the audit log. Reads and changes go through the core's use cases only."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from aiohttp import web

from mana_credits_core import validation as v
from mana_credits_core.errors import CreditsError, InvalidInput, UserNotFound

from ..keys import SERVICES
from .session import check_csrf
from .signin import BAD_FORM
from .views import refused, render, signed_in

LEDGER_PAGE = 25
FOUND_AT_MOST = 50


@signed_in
async def users(request: web.Request, operator: str) -> web.StreamResponse:
    query = request.query.get("q", "").strip()
    if not query:
        return await render(request, "users.html", "Users", query="")
    try:
        found = await request.config_dict[SERVICES].console.find_users(query, FOUND_AT_MOST + 1)
    except InvalidInput as exc:
        return await render(request, "users.html", "Users", 400, query=query, error=exc.message)
    more = len(found) > FOUND_AT_MOST
    return await render(
        request, "users.html", "Users", query=query, found=found[:FOUND_AT_MOST], more=more
    )


@signed_in
async def user(request: web.Request, operator: str) -> web.StreamResponse:
    notice = "Credits granted." if request.query.get("granted") else None
    done = request.query.get("done", "")
    return await user_page(request, notice=notice or DONE.get(done))


# What the user page says after one of its actions (`?done=<action>`).
DONE = {
    "refund": "Purchase refunded: its credits were taken back.",
    "sync-gift": "Cloud Sync gifted.",
    "sync-revoke": "Cloud Sync gift revoked.",
    "gift-cancel": "Gift cancelled: its credits went back to this user.",
}


async def user_page(
    request: web.Request,
    form: dict[str, str] | None = None,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    refill: dict[str, str] | None = None,
) -> web.StreamResponse:
    """The user's page; `form` refills the grant form (after a refused grant),
    `refill` the action form named by its "form" (after a refused action)."""
    if form is None:
        form = {"key": new_key(), "amount": "", "reason": "", "expires_in_days": ""}
    services = request.config_dict[SERVICES]
    user_id = request.match_info["user_id"]
    cursor = request.query.get("ledger") or None
    try:
        balance = await services.credits.existing_balance(user_id)
        ledger = await services.credits.transactions_page(user_id, LEDGER_PAGE, cursor)
    except UserNotFound:
        message = "No user with this id holds a balance: check the id, or search for it."
        return await refused(request, "No such user", message, 404)
    except InvalidInput as exc:
        return await refused(request, "Cannot show this page", exc.message, 400)
    context: dict[str, Any] = {
        "user_id": user_id,
        "balance": balance,
        "ledger": ledger,
        "cursor": cursor,
        "records": await services.users.records(user_id),
        # Lots and reservations shown, newest first: a user with thousands made a page
        # of hundreds of kilobytes; the CLI lists them all.
        "SHOWN": USER_PAGE_ROWS,
        "audit": await services.console.audit(1, subject=user_id),
        "form": form,
        # Each action form's key is this page's key and what the form names, so two
        # forms on one page never share one; a refused form keeps its own.
        "page_key": new_key(),
        "refill": refill or {"form": ""},
        "error": error,
        "notice": notice,
    }
    return await render(request, "user.html", f"User {user_id}", status, **context)


@signed_in
async def grant(request: web.Request, operator: str) -> web.StreamResponse:
    posted = await request.post()
    if not await check_csrf(request, posted):
        return await refused(request, "Refused", BAD_FORM, 403)
    form = {
        name: str(posted.get(name, "")).strip()
        for name in ("key", "amount", "reason", "expires_in_days")
    }
    user_id = request.match_info["user_id"]
    services = request.config_dict[SERVICES]
    try:
        if not form["key"]:
            raise InvalidInput("key", "the form is incomplete: reload the page and try again")
        # Only users the ledger knows, as the user page: a form left open since an
        # account's deletion, or a hand-made one, must not create a balance.
        await services.credits.existing_balance(user_id)
        amount = whole_number(form["amount"], "amount")
        expiry = form["expires_in_days"]
        days = whole_number(expiry, "expires in days") if expiry else None
        await services.console.grant(
            operator,
            user_id,
            amount,
            form["reason"],
            expires_in_days=days,
            idempotency_key=f"console:{form['key']}",
        )
    except UserNotFound:
        return await refused(request, "No such user", "No user with this id.", 404)
    except CreditsError as exc:
        status = 400 if isinstance(exc, InvalidInput) else 409
        return await user_page(request, form, status=status, error=f"Not granted: {exc.message}")
    raise web.HTTPSeeOther(f"/console/users/{quote(user_id, safe='')}?granted=1")


USER_PAGE_ROWS = 100


def new_key() -> str:
    """A form's idempotency key: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


# Digits read at most: more than any bound a form's numbers have (the use case says
# which bound a smaller number passes, e.g. "amount must be at most 100000000").
MAX_DIGITS = 18


def whole_number(text: str, name: str) -> int:
    """`text` as a whole number (ASCII digits only: `int` also reads other scripts'
    digits, which no one types into an amount on purpose). Raises `InvalidInput`
    naming `name`."""
    if not (text.isascii() and text.isdecimal()):
        raise InvalidInput(name, f"{name} must be a whole number")
    if len(text.lstrip("0")) > MAX_DIGITS:
        raise InvalidInput(name, f"{name} is too large")
    return int(text)


@signed_in
async def audit(request: web.Request, operator: str) -> web.StreamResponse:
    subject = request.query.get("subject", "").strip() or None
    try:
        page = whole_number(request.query.get("page", "1"), "page")
        if subject is not None:
            subject = v.identifier(subject, "subject")
        found = await request.config_dict[SERVICES].console.audit(page, subject)
    except InvalidInput as exc:
        return await refused(request, "Cannot show this page", exc.message, 400)
    notice = "User deleted." if request.query.get("deleted") else None
    return await render(
        request, "audit.html", "Audit log", audit=found, subject=subject, notice=notice
    )


ROUTES = [
    ("GET", "/users", users),
    ("GET", "/users/{user_id}", user),
    ("POST", "/users/{user_id}/grant", grant),
    ("GET", "/audit", audit),
]
