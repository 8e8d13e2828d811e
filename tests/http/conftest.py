"""HTTP fixtures: the app on a real store, a real JWKS endpoint on loopback, real tokens."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.identity.dev import SigningKey
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core.ports import Store
from mana_credits_core.services import Services
from mana_credits_http import create_app

from .console_client import Client, redeem

SERVICE_KEYS = ("svc-key-current", "svc-key-previous")
ORIGIN = "http://localhost:5173"


@dataclass
class Jwks:
    """An auth service stand-in: serves the test key's JWKS and counts the fetches."""

    key: SigningKey
    url: str = ""
    fetches: int = 0
    down: bool = False
    extra_keys: list[dict[str, Any]] = field(default_factory=list)

    def token(self, sub: str = "alice", **claims: Any) -> str:
        role = claims.pop("role", "user")
        email = claims.pop("email", f"{sub}@example.com")
        issuer = claims.pop("issuer", self.url)
        return self.key.mint(sub, issuer=issuer, email=email, role=role, extra=claims)


@pytest.fixture(scope="session")
async def jwks() -> AsyncIterator[Jwks]:
    state = Jwks(SigningKey.generate())

    async def serve(request: web.Request) -> web.Response:
        state.fetches += 1
        if state.down:
            return web.Response(status=503)
        document = state.key.jwks()
        document["keys"] += state.extra_keys
        return web.json_response(document)

    app = web.Application()
    app.router.add_get("/api/auth/jwks", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.url = str(server.make_url("")).rstrip("/")
    yield state
    await server.close()


def settings_like(base: Settings, **overrides: Any) -> Settings:
    """`base`'s home, JWKS origin and service keys, with `overrides` given by their
    documented names (e.g. `MANA_CREDITS_GIFT_FAILURES=4`)."""
    return Settings(
        MANA_CREDITS_HOME=base.home,
        MANA_AUTH_URL=base.auth_url,
        MANA_SERVICE_KEY=base.service_key,
        **overrides,
    )


@pytest.fixture
def http_settings(jwks: Jwks, tmp_path: Any) -> Settings:
    return Settings(
        MANA_CREDITS_HOME=tmp_path,
        MANA_AUTH_URL=jwks.url,
        MANA_SERVICE_KEY=",".join(SERVICE_KEYS),
        CORS_ORIGINS=f"{ORIGIN},http://localhost:5180",
        MANA_CREDITS_MAX_BODY_BYTES=16 * 1024,
    )


@pytest.fixture
def app_services(sql_store: SqlStore, http_settings: Settings) -> Services:
    return build_services(sql_store, http_settings, clock=TickingClock())


@pytest.fixture
async def client(
    app_services: Services, http_settings: Settings, jwks: Jwks
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    jwks.down = False
    jwks.extra_keys.clear()
    app = create_app(http_settings, services=app_services)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def service(app_id: str | None = None, key: str = SERVICE_KEYS[0]) -> dict[str, str]:
    headers = {"X-Service-Key": key}
    if app_id is not None:
        headers["X-App-Id"] = app_id
    return headers


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


# The console's tests: services on the test's store (a module may define its own), and a
# client signed in to the console as `carol`.
@pytest.fixture
def console_services(store: Store, http_settings: Settings) -> Services:
    return build_services(store, http_settings, clock=TickingClock())


@pytest.fixture
async def operator(console_services: Services, http_settings: Settings) -> AsyncIterator[Client]:
    """A browser signed in as `carol`."""
    app = create_app(http_settings, services=console_services)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        link = await console_services.console.issue_link("carol")
        assert (await redeem(client, link.token)).status == 303
        yield client
