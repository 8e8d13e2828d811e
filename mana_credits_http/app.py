"""The aiohttp application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from aiohttp import web

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.identity import open_identity
from mana_credits_adapters.identity.dev import SigningKey
from mana_credits_adapters.networks import parse_networks
from mana_credits_adapters.schema import SchemaGate
from mana_credits_adapters.settings import Settings
from mana_credits_core.ports import IdentityVerifier
from mana_credits_core.services import Services

from . import apidocs, openapi
from .background import periodic, watch_reachability
from .connections import ConnectionGuard
from .console import console_app
from .cors import cors
from .emails import remember_email
from .errors import (
    FAULTS_LOGGED,
    UNAVAILABLE_LOG_EVERY,
    UNAVAILABLE_LOGGED,
    Throttle,
    error_middleware,
)
from .jsonout import json_response
from .keys import CONNECTIONS, GIFT_LIMITER, IDENTITY, METRICS, SCHEMA, SERVICES, SETTINGS
from .metrics import Metrics
from .observability import observe, quiet_client_mistakes
from .ratelimit import FailureLimiter
from .receive import answering, receive
from .routes import (
    Route,
    add_route,
    credits,
    dev_checkout,
    gift_page,
    gifts,
    internal,
    ops,
    prices,
    purchases,
    sync,
)

log = logging.getLogger("mana_credits.http")

# The API: every app serves these. `served_routes` adds the document, its page and the
# embedded default's helpers.
ROUTES: list[Route] = [
    *ops.ROUTES,
    *credits.ROUTES,
    *purchases.ROUTES,
    *prices.ROUTES,
    *gifts.ROUTES,
    *internal.ROUTES,
    *sync.ROUTES,
    *[replace(route, content_type="text/html") for route in gift_page.ROUTES],
]


def served_routes(settings: Settings, extra: list[Route]) -> list[Route]:
    """Every route an app on `settings` serves (Swagger UI's static files aside), as
    `/openapi.json` lists them: the API, `extra` (the document's own route), `/docs`,
    and the dev JWKS and checkout page where the embedded default serves them."""
    routes = [*ROUTES, *extra, *apidocs.ROUTES]
    if settings.dev_identity:
        jwks = SigningKey.load_or_create(settings.home).jwks()

        async def dev_jwks(request: web.Request) -> web.Response:
            return json_response(jwks)

        # The embedded default is its own auth service: other local services can
        # verify the dev tokens against this JWKS.
        routes.append(
            Route("GET", "/api/auth/jwks", dev_jwks,
                  "Dev identity only: the public key of the dev tokens (JWKS)", "none")
        )  # fmt: skip
    if not settings.stripe_secret_key:
        # The dev gateway's Checkout URLs lead here (never in production: see serve).
        routes += dev_checkout.ROUTES
    return routes


def create_app(
    settings: Settings,
    *,
    services: Services | None = None,
    identity: IdentityVerifier | None = None,
) -> web.Application:
    """The server. It opens its own services and identity from `settings` unless given.

    Services or an identity passed in belong to the caller, who closes them.
    """
    quiet_client_mistakes()
    # `receive` next to last: the body is read (or found late, or its client gone)
    # before any handler runs, and what reading it raises (413) gets the error envelope
    # and CORS. `remember_email` innermost: it follows the handler.
    app = web.Application(
        middlewares=[observe, cors, error_middleware, receive, remember_email],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[FAULTS_LOGGED] = set()
    app[UNAVAILABLE_LOGGED] = Throttle(UNAVAILABLE_LOG_EVERY)
    app[METRICS] = Metrics()
    # Enforced in full on `GuardedSite` (`serve`); any other server gets the body bound.
    app[CONNECTIONS] = ConnectionGuard(
        settings.request_read_timeout_seconds,
        settings.max_connections_per_client,
        parse_networks(settings.trusted_proxies),
        app[METRICS],
    )
    app.on_response_prepare.append(answering)
    app[GIFT_LIMITER] = FailureLimiter(
        settings.gift_failures_allowed, settings.gift_failure_window_seconds
    )

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        if services is not None:
            stop_counting = use_services(app, services)
            yield
            stop_counting()
            return
        async with bootstrap(settings) as opened:
            stop_counting = use_services(app, opened)
            yield
            stop_counting()

    async def identity_ctx(app: web.Application) -> AsyncIterator[None]:
        if identity is not None:
            app[IDENTITY] = identity
            yield
            return
        async with open_identity(settings) as verifier:
            app[IDENTITY] = verifier
            yield

    app.cleanup_ctx.extend(
        [services_ctx, identity_ctx, database_watch, reservation_sweep, gift_expiry, reconcile]
    )
    if settings.billing_enabled:
        app.cleanup_ctx.append(billing_run)
    document: dict[str, object] = {}

    async def openapi_json(request: web.Request) -> web.Response:
        return json_response(document)

    own = Route("GET", "/openapi.json", openapi_json, "This document (OpenAPI 3.1)", "none")
    routes = served_routes(settings, [own])
    for route in routes:
        add_route(app, route.method, route.path, route.handler)
    document.update(openapi.document(routes))
    apidocs.add_routes(app)
    app.add_subapp("/console", console_app(settings))
    return app


def use_services(app: web.Application, services: Services) -> Callable[[], None]:
    """Serve `services` and count their events; returns what stops the counting."""
    app[SERVICES] = services
    app[SCHEMA] = SchemaGate(services.store, app[SETTINGS].effective_database_url)
    # Only pooled stores report connections in use; the others have no pool to watch.
    in_use = getattr(services.store, "connections_in_use", None)
    if callable(in_use):
        app[METRICS].watch_pool(in_use)
    return services.events.subscribe(app[METRICS].observe)


async def database_watch(app: web.Application) -> AsyncIterator[None]:
    """Log when the database becomes unreachable, and when it is back (one line each)."""
    interval = app[SETTINGS].db_probe_interval_seconds
    async with watch_reachability(app[SERVICES].store, interval):
        yield


async def reservation_sweep(app: web.Application) -> AsyncIterator[None]:
    """Release expired reservations, expire the free credits of lots past their date,
    then tell users of credits expiring within seven days, in the background."""
    services = app[SERVICES]

    async def job() -> int:
        done = await services.reservations.release_expired() + await services.lots.expire()
        return done + await services.lots.send_expiry_notices()

    async with periodic("reservation sweep", app[SETTINGS].sweep_interval_seconds, job):
        yield


async def reconcile(app: web.Application) -> AsyncIterator[None]:
    """Check the ledger's invariants every `MANA_CREDITS_RECONCILE_INTERVAL` seconds for
    the console's overview (it only reads; the console's "Check now" runs it at once)."""

    async def job() -> int:
        status = await app[SERVICES].reconcile_watch.check()
        if not status.ok:
            log.warning(
                "reconcile: %d broken invariants; run `mana-credits reconcile`", status.drifts
            )
        return 0  # nothing done to report: the check only reads

    async with periodic("reconcile check", app[SETTINGS].reconcile_interval_seconds, job):
        yield


async def gift_expiry(app: web.Application) -> AsyncIterator[None]:
    """Expire overdue gifts in the background, returning their credits once."""
    job = app[SERVICES].gifts.expire
    async with periodic("gift expiry", app[SETTINGS].gift_expiry_interval_seconds, job):
        yield


async def billing_run(app: web.Application) -> AsyncIterator[None]:
    """The Cloud Sync billing run, hourly by default; overlapping runs share the work."""

    async def job() -> int:
        return (await app[SERVICES].sync.charge_due()).total

    async with periodic("billing run", app[SETTINGS].billing_interval_seconds, job):
        yield
