"""Structured JSON logs with a request id, and request metrics."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .keys import METRICS, REQUEST_ID, Handler

access = logging.getLogger("mana_credits.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # The standard library's spacing (`"level": "info"`) is what operators' searches
        # and alerts match, so log lines keep it (orjson writes no spaces).
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    ours = logging.getLogger("mana_credits")
    ours.handlers[:] = [handler]
    ours.setLevel(level.upper())
    ours.propagate = False
    # The libraries (psycopg, aiohttp, SQLAlchemy) log through the root logger: give them
    # the same JSON lines, warnings and worse only, instead of Python's bare fallback.
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.WARNING, ours.level))


class ClientMistakes(logging.Filter):
    """aiohttp logs a request it cannot parse (a header or URL over its limits, a bad
    chunked body, a NUL in the method) as an ERROR with a traceback, once per request,
    from any client: that is the client's mistake, answered 400. One INFO line instead,
    without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        failure = record.exc_info[1] if record.exc_info else None
        if isinstance(failure, HttpProcessingError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "unparsable request from a client: %s", (failure,)
            record.exc_info, record.exc_text = None, None
        return True


def quiet_client_mistakes() -> None:
    """Install `ClientMistakes` on aiohttp's server logger (once)."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, ClientMistakes) for f in server.filters):
        server.addFilter(ClientMistakes())


def route_name(request: web.Request) -> str:
    """The route template (not the raw path), so metrics do not explode per user id."""
    info = request.match_info
    resource = info.route.resource if info.http_exception is None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-Id", "")
    # 32 random hex digits, as a UUID's hex without its fixed version bits: `uuid4()`
    # builds a UUID object (and checks it) only for its text.
    request_id = given if given.isprintable() and 0 < len(given) <= 100 else os.urandom(16).hex()
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as answer:
        # An answer raised rather than returned (the console's redirects after a
        # change, `raise web.HTTPSeeOther`): aiohttp sends it as it is, so it is
        # counted, logged and given its request id here like any other.
        done(request, answer, started)
        raise
    done(request, response, started)
    return response


def done(request: web.Request, response: web.StreamResponse, started: float) -> None:
    """Count and log `response`, and give it the request's id."""
    elapsed = time.perf_counter() - started
    request_id = request[REQUEST_ID]
    response.headers["X-Request-Id"] = request_id
    route = route_name(request)
    request.app[METRICS].request_done(route, request.method, response.status, elapsed)
    if access.isEnabledFor(logging.INFO):
        access.info(
            "request",
            extra={
                "fields": {
                    "requestId": request_id,
                    "method": request.method,
                    "route": route,
                    "status": response.status,
                    "ms": round(elapsed * 1000, 2),
                }
            },
        )
