"""The user page's actions beyond a grant: refund a purchase, gift or revoke Cloud
Sync, cancel a gift code, delete the user. Each form carries the CSRF token, a
required reason and a key of its own; the work is done by `ConsoleActions`, on the
same use cases as the API and the CLI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import quote

from aiohttp import web

from mana_credits_core.console import DELETION_AUDIT
from mana_credits_core.errors import CreditsError, UserNotFound
from mana_credits_core.services.console_actions import ActionDone, ConsoleActions

from ..errors import status_for
from ..keys import SERVICES
from .pages import user_page
from .session import check_csrf
from .signin import BAD_FORM
from .views import refused, signed_in

Action = Callable[[ConsoleActions, str, str, dict[str, str]], Awaitable[ActionDone]]


def fields(posted: Mapping[str, object], *names: str) -> dict[str, str]:
    """The posted fields, trimmed, except the typed confirmation: it must be the user
    id exactly."""
    return {
        name: str(posted.get(name, "")) if name == "confirm" else str(posted.get(name, "")).strip()
        for name in names
    }


async def run(
    request: web.Request, operator: str, name: str, action: Action, *extra: str
) -> web.StreamResponse:
    """Check the CSRF token, run `action`, then go back to the user's page with its
    notice; a refusal re-shows the page with the use case's message and its 4xx."""
    posted = await request.post()
    if not await check_csrf(request, posted):
        return await refused(request, "Refused", BAD_FORM, 403)
    form = fields(posted, "key", "reason", *extra)
    user_id = request.match_info["user_id"]
    services = request.config_dict[SERVICES]
    actions = ConsoleActions(services)
    try:
        if name != DELETION_AUDIT:  # a deletion checks after looking for its audit entry
            await services.credits.existing_balance(user_id)  # only users the ledger knows
        await action(actions, operator, user_id, form)
    except UserNotFound:
        return await refused(request, "No such user", "No user with this id.", 404)
    except CreditsError as exc:
        refill = {"form": form_id(request, name), **form}
        return await user_page(
            request, status=status_for(exc), error=f"Not done: {exc.message}", refill=refill
        )
    if name == DELETION_AUDIT:
        raise web.HTTPSeeOther(f"/console/audit?subject={quote(user_id, safe='')}&deleted=1")
    raise web.HTTPSeeOther(f"/console/users/{quote(user_id, safe='')}?done={name}")


def form_id(request: web.Request, name: str) -> str:
    """Which form on the page was sent: the action and what it names (to refill it)."""
    target = request.match_info.get("purchase_id") or request.match_info.get("gift_id")
    return f"{name}:{target}" if target else name


@signed_in
async def refund(request: web.Request, operator: str) -> web.StreamResponse:
    purchase_id = request.match_info["purchase_id"]

    async def act(a: ConsoleActions, who: str, user: str, f: dict[str, str]) -> ActionDone:
        return await a.refund(who, user, purchase_id, f["reason"], f["key"])

    return await run(request, operator, "refund", act)


@signed_in
async def gift_sync(request: web.Request, operator: str) -> web.StreamResponse:
    async def act(a: ConsoleActions, who: str, user: str, f: dict[str, str]) -> ActionDone:
        return await a.gift_sync(who, user, f["reason"], f["key"])

    return await run(request, operator, "sync-gift", act)


@signed_in
async def revoke_sync(request: web.Request, operator: str) -> web.StreamResponse:
    async def act(a: ConsoleActions, who: str, user: str, f: dict[str, str]) -> ActionDone:
        return await a.revoke_sync(who, user, f["reason"], f["key"])

    return await run(request, operator, "sync-revoke", act)


@signed_in
async def cancel_gift(request: web.Request, operator: str) -> web.StreamResponse:
    gift_id = request.match_info["gift_id"]

    async def act(a: ConsoleActions, who: str, user: str, f: dict[str, str]) -> ActionDone:
        return await a.cancel_gift(who, user, gift_id, f["reason"], f["key"])

    return await run(request, operator, "gift-cancel", act)


@signed_in
async def delete_user(request: web.Request, operator: str) -> web.StreamResponse:
    async def act(a: ConsoleActions, who: str, user: str, f: dict[str, str]) -> ActionDone:
        return await a.delete_user(who, user, f["confirm"], f["reason"], f["key"])

    return await run(request, operator, DELETION_AUDIT, act, "confirm")


ROUTES = [
    ("POST", "/users/{user_id}/purchases/{purchase_id}/refund", refund),
    ("POST", "/users/{user_id}/sync/gift", gift_sync),
    ("POST", "/users/{user_id}/sync/revoke", revoke_sync),
    ("POST", "/users/{user_id}/gifts/{gift_id}/cancel", cancel_gift),
    ("POST", "/users/{user_id}/delete", delete_user),
]
