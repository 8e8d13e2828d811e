"""The app on a loopback port in a thread of the test process, on PostgreSQL, with a
manual clock, a JWKS endpoint for real tokens and a fake Stripe for the real SDK."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.clock import ManualClock
from mana_credits_adapters.settings import Settings
from mana_credits_core.ports import IdGenerator
from mana_credits_core.services import Services
from mana_credits_http import create_app

from ..fakes.stripe_server import SECRET_KEY as STRIPE_KEY
from ..fakes.stripe_server import WEBHOOK_SECRET, sign, start_fake_stripe
from .server import serving_jwks

T = TypeVar("T")
KEY = "live-service-key"
START = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)  # a month end: charges clamp in February


class CountingIds:
    """Ids that follow the order they are made in (UUID-shaped, zero-padded counter):
    every run makes the same ids in the same order, so ties that ids break (the burn
    order of lots made at one instant) fall alike in every run of a test."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def new_id(self) -> str:
        return str(uuid.UUID(int=next(self._next)))


class LiveServer:
    """The app on a loopback port, in a thread with its own event loop and manual clock.

    `url` is any database URL the settings take (`memory://` included); `ids` replaces
    the random ids (`CountingIds` for a deterministic run)."""

    def __init__(self, url: str, home: Path, ids: IdGenerator | None = None) -> None:
        self.ids = ids
        self.loop = asyncio.new_event_loop()
        self.home = home
        self.clock = ManualClock(START)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.stripe, self._stripe_server = self.call(start_fake_stripe())
        self._auth_context = serving_jwks()
        self.auth = self.call(self._auth_context.__aenter__())
        self.settings = Settings(
            DATABASE_URL=url,
            MANA_CREDITS_HOME=home,
            MANA_SERVICE_KEY=KEY,
            MANA_AUTH_URL=self.auth.url,
            STRIPE_SECRET_KEY=STRIPE_KEY,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            STRIPE_API_BASE=self.stripe.url,
            # The background jobs wait: `tick` runs them at known points of the model.
            MANA_CREDITS_BILLING_ENABLED=False,
            MANA_CREDITS_SWEEP_INTERVAL=1e9,
            MANA_CREDITS_GIFT_EXPIRY_INTERVAL=1e9,
            MANA_CREDITS_GIFT_FAILURES=1_000_000,
        )
        self._tokens: dict[tuple[str, str], str] = {}
        self.services, self.base, self._stop = self.call(self._start())

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=60)

    async def _start(self) -> tuple[Services, str, Any]:
        context = bootstrap(self.settings, migrate=True, clock=self.clock, ids=self.ids)
        services = await context.__aenter__()
        runner = web.AppRunner(create_app(self.settings, services=services))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]

        async def stop() -> None:
            await runner.cleanup()
            await context.__aexit__(None, None, None)
            await self._stripe_server.close()
            await self._auth_context.__aexit__(None, None, None)

        return services, f"http://127.0.0.1:{port}", stop

    def close(self) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()

    def token(self, user: str, role: str = "user") -> str:
        # One token per user and role: the server's verified-token cache then spares
        # every request a signature check, as it does for a real client.
        if (user, role) not in self._tokens:
            self._tokens[(user, role)] = self.auth.token(user, role)
        return self._tokens[(user, role)]

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        user: str | None = None,
        role: str = "user",
    ) -> Answer:
        """As a service (X-Service-Key), or as `user` with a bearer token."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if user is None:
            headers["X-Service-Key"] = KEY
        else:
            headers["Authorization"] = f"Bearer {self.token(user, role)}"
        return self._send(urllib.request.Request(self.base + path, data, headers, method=method))

    def webhook(self, payload: bytes) -> Answer:
        headers = {"Content-Type": "application/json", "Stripe-Signature": sign(payload)}
        path = self.base + "/api/v1/webhooks/stripe"
        return self._send(urllib.request.Request(path, payload, headers, method="POST"))

    @staticmethod
    def _send(request: urllib.request.Request) -> Answer:
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Answer(response.status, json.loads(response.read()))
        except urllib.error.HTTPError as error:
            return Answer(error.code, json.loads(error.read()))


@dataclass
class Answer:
    status: int
    body: Any
