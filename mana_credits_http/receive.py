"""Every request is received whole, within its time bound, before its handler runs.

Bodies are small (`MANA_CREDITS_MAX_BODY_BYTES`), so reading one up front costs nothing,
and it keeps clients out of the handlers: a handler never waits on a slow client, and a
client hanging up mid-body is found here, as what it is, not as a handler's 500.
Handlers read the body as before (`request.read()` answers from aiohttp's copy).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from .connections import TIMED_OUT
from .errors import client_gone, envelope
from .keys import CONNECTIONS, Handler

log = logging.getLogger("mana_credits.http")


@web.middleware
async def receive(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the body by the connection's deadline: 408 (and the connection closed) when
    it is late, a quiet 499 when the client hung up; then run the handler."""
    guard = request.app[CONNECTIONS]
    deadline = guard.body_deadline(request)
    if request.content.is_eof():
        # Received whole with its headers (a small body usually is, and a request
        # without one always): nothing to wait for, so no timer to arm and cancel; and
        # without a body (most GETs) nothing to copy.
        if request.body_exists:
            await request.read()
        guard.body_received(request)
        return await handler(request)
    try:
        async with asyncio.timeout_at(deadline):
            await request.read()
    except TimeoutError:
        guard.body_timed_out(request)
        log.info(
            "request not received in time: connection closed",
            extra={
                "fields": {
                    "method": request.method,
                    "path": request.path,
                    "part": "body",
                    "seconds": guard.request_timeout,
                }
            },
        )
        response = envelope(408, TIMED_OUT, "request_timeout")
        response.force_close()
        return response
    except OSError:  # the connection is gone: aiohttp hands on what the transport said
        return client_gone(request, "before its request was received")
    guard.body_received(request)
    return await handler(request)


async def answering(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: the client's next byte starts a new request's clock."""
    # `config_dict`: on a sub-application's route (the console) `request.app` is it.
    request.config_dict[CONNECTIONS].answered(request)
