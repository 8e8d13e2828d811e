"""After a request with a verified token: the user's e-mail address, for the console.

The address is recorded by `UserEmails.note`, which asks the store only when this
process has not recorded that address for that user lately, so the debit path pays a
dictionary look-up, not a statement. It runs after the handler, so a balance the
request created gets the address at once.
"""

from __future__ import annotations

import logging

from aiohttp import web

from .keys import PRINCIPAL, SERVICES, Handler

log = logging.getLogger("mana_credits.http")


@web.middleware
async def remember_email(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Only after an answer the handler gave: a refusal raised (a 402, a database that is
    # away) passes untouched, so a request never waits on a second call to a store that
    # just failed it; the next answered request records the address.
    response = await handler(request)
    if response.status < 500:
        await _note(request)
    return response


async def _note(request: web.Request) -> None:
    principal = request.get(PRINCIPAL)
    if principal is None or not principal.email:
        return
    try:
        await request.config_dict[SERVICES].emails.note(principal.user_id, principal.email)
    except Exception as exc:  # bookkeeping: it must never fail the answer it follows
        log.warning("e-mail address not recorded: %s", type(exc).__name__)
