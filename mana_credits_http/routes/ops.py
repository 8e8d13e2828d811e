"""Operations: health, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from ..jsonout import json_response
from ..keys import METRICS, SCHEMA, SERVICES
from ..models import HealthOut, ReadyOut, iso
from . import Route


async def health(request: web.Request) -> web.Response:
    answer = HealthOut(status="ok", service="mana-credits", timestamp=iso(datetime.now(UTC)))
    return json_response(answer.render())


async def ready(request: web.Request) -> web.Response:
    await request.app[SERVICES].store.ping()  # StoreUnavailable → 503
    # A database nobody migrated would answer every other route with a fault: 503
    # `schema_outdated` here (said once in the log) keeps traffic away meanwhile.
    await request.app[SCHEMA].check()
    return json_response(ReadyOut(status="ready").render())


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


ROUTES = [
    Route("GET", "/health", health, "Liveness", "none", response=HealthOut),
    Route(
        "GET",
        "/health/ready",
        ready,
        "Readiness: touches the database, whose schema must be the code's",
        "none",
        response=ReadyOut,
    ),
    Route("GET", "/metrics", metrics, "Prometheus metrics", "none"),
]
