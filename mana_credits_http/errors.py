"""One error middleware: core errors to statuses through a table, the contract's envelope."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from mana_credits_adapters.bootstrap import failure_cause
from mana_credits_adapters.errors import SetupError
from mana_credits_core.errors import (
    Conflict,
    CreditsError,
    Forbidden,
    GiftNotCancellable,
    GiftNotRedeemable,
    IdempotencyKeyReused,
    InsufficientCredits,
    InsufficientCreditsForGift,
    InvalidInput,
    InvalidWebhook,
    NotFound,
    PaymentProviderError,
    PaymentProviderUnavailable,
    RateLimited,
    ReservationNotPending,
    StoreUnavailable,
    SyncStateError,
    Unauthenticated,
)

from .jsonout import json_response
from .keys import Handler

log = logging.getLogger("mana_credits.http")
# The setup fault codes already logged by this application (each is logged once).
FAULTS_LOGGED = web.AppKey("faults_logged", set[str])
# A request the store could not serve is answered 503 and said in the log, at most once
# per this many seconds per application: a database away for a minute is a few lines,
# not one per request.
UNAVAILABLE_LOG_EVERY = 10.0


class Throttle:
    """Whether something said now would be said at most once per `every` seconds."""

    def __init__(self, every: float) -> None:
        self._every = every
        self._last = -every

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self._every:
            return False
        self._last = now
        return True


UNAVAILABLE_LOGGED = web.AppKey("unavailable_logged", Throttle)

# Walked along the error's __mro__, so the most specific class wins.
STATUS: dict[type[CreditsError], int] = {
    InvalidInput: 400,
    Unauthenticated: 401,
    InsufficientCredits: 402,
    Forbidden: 403,
    NotFound: 404,
    ReservationNotPending: 400,  # the contract's answer to a second commit/refund
    IdempotencyKeyReused: 409,
    Conflict: 409,
    StoreUnavailable: 503,
    PaymentProviderError: 502,
    PaymentProviderUnavailable: 503,
    InvalidWebhook: 400,
    InsufficientCreditsForGift: 400,  # the contract's answer when a gift does not fit
    GiftNotRedeemable: 400,
    GiftNotCancellable: 400,
    RateLimited: 429,
    SyncStateError: 400,
    CreditsError: 400,
}


class AdminRequired(Forbidden):
    """Kept apart because the contract gives it its own body."""

    default_message = "Admin access required"


def status_for(error: CreditsError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def envelope(
    status: int, message: str, code: str, details: dict[str, Any] | None = None
) -> web.Response:
    body: dict[str, Any] = {"statusCode": status, "message": message, "code": code}
    if details:
        # The core names details as Python arguments (original_amount); the wire is
        # camelCase like every other key of the API (originalAmount).
        body["details"] = {to_camel(key): value for key, value in details.items()}
    return json_response(body, status=status)


def from_validation(error: ValidationError) -> InvalidInput:
    """A pydantic failure as the core's error, naming the first bad field."""
    first = error.errors(include_url=False, include_input=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    return InvalidInput(field, f"{field}: {first['msg']}")


HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


CLIENT_GONE = 499  # "client closed request", as proxies log it; never sent to anyone


def client_gone(request: web.Request, when: str) -> web.Response:
    """What a request whose client hung up comes to: one INFO line, no traceback, and
    499 for the access log and the metrics (the client is not there to read it).

    `when` completes the log line ("before its request was received"). Whatever the
    request already did stays done (handlers are not cancelled when a client leaves):
    the client's retry with its idempotency key is answered from it."""
    log.info(
        "client disconnected %s",
        when,
        extra={"fields": {"method": request.method, "path": request.path}},
    )
    return web.Response(status=CLIENT_GONE)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AdminRequired:
        return json_response({"error": "Forbidden", "message": "Admin access required"}, status=403)
    except SetupError as error:
        # The store's own fault (a damaged or read-only SQLite file): the operator's to
        # fix, told once in the log with the file; clients get 503 and no internals.
        logged = request.app.get(FAULTS_LOGGED)
        if logged is not None and error.code not in logged:
            logged.add(error.code)
            log.error("store fault: %s", error.message, extra={"fields": {"code": error.code}})
        return envelope(503, StoreUnavailable.default_message, StoreUnavailable.code)
    except StoreUnavailable as error:
        _note_unavailable(request, error)
        return envelope(503, error.message, error.code, error.details or None)
    except CreditsError as error:
        return envelope(status_for(error), error.message, error.code, error.details or None)
    except ValidationError as error:
        bad = from_validation(error)
        return envelope(400, bad.message, bad.code, bad.details)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = HTTP_CODES.get(error.status, "http_error")
        message = "Route not found" if error.status == 404 else error.reason
        response = envelope(error.status, message, code)
        if error.status == 405:
            response.headers["Allow"] = error.headers.get("Allow", "")
        return response
    except ConnectionResetError:  # aiohttp's word for a client gone while writing to it
        return client_gone(request, "before its answer was sent")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return envelope(500, "Internal server error", "internal_error")


def _note_unavailable(request: web.Request, error: StoreUnavailable) -> None:
    """One warning line naming the route and the driver's words for why (pool
    exhausted, connection refused, database locked), at most every
    `UNAVAILABLE_LOG_EVERY` seconds."""
    throttle = request.config_dict.get(UNAVAILABLE_LOGGED)
    if throttle is not None and not throttle.due():
        return
    cause = failure_cause(error.__cause__) if error.__cause__ is not None else "no cause given"
    log.warning(
        "store unavailable, answered 503: %s",
        cause,
        extra={"fields": {"method": request.method, "path": request.path}},
    )
