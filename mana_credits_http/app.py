"""The aiohttp application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings
from mana_credits_core.errors import StoreUnavailable
from mana_credits_core.services import Services

SERVICES = web.AppKey("services", Services)
SETTINGS = web.AppKey("settings", Settings)


def envelope(status: int, message: str, code: str) -> web.Response:
    return web.json_response(
        {"statusCode": status, "message": message, "code": code}, status=status
    )


async def health(request: web.Request) -> web.Response:
    return web.json_response(
        {"status": "ok", "service": "mana-credits", "timestamp": datetime.now(UTC).isoformat()}
    )


async def ready(request: web.Request) -> web.Response:
    try:
        await request.app[SERVICES].store.ping()
    except StoreUnavailable:
        return envelope(503, "Database unavailable", "store_unavailable")
    return web.json_response({"status": "ready"})


async def not_implemented(request: web.Request) -> web.Response:
    return envelope(501, "Not implemented yet", "not_implemented")


def create_app(settings: Settings, services: Services | None = None) -> web.Application:
    """The application; opens its own services from `settings` unless given them."""
    app = web.Application()
    app[SETTINGS] = settings

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        if services is not None:
            app[SERVICES] = services
            yield
            return
        async with bootstrap(settings) as opened:
            app[SERVICES] = opened
            yield

    app.cleanup_ctx.append(services_ctx)
    app.router.add_get("/health", health)
    app.router.add_get("/health/ready", ready)
    app.router.add_route("*", "/api/v1/{tail:.*}", not_implemented)
    return app
