"""The server's background sweep expires credits of lots past their date, and the
history shows the `expire` entry."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core import TransactionType
from mana_credits_http import create_app

from .conftest import Jwks, bearer, service, settings_like


async def test_the_background_sweep_expires_lots_past_their_date(
    sql_store: SqlStore, http_settings: Settings, jwks: Jwks
) -> None:
    settings = settings_like(http_settings, MANA_CREDITS_SWEEP_INTERVAL=0.05)
    clock = TickingClock()
    services = build_services(sql_store, settings, clock=clock)
    promo = clock.now() + timedelta(days=1)
    await services.credits.grant("alice", 30, "promo", "ops", expires_at=promo)
    await services.credits.grant("alice", 12, "kept", "ops")
    app = create_app(settings, services=services)
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            clock.advance(timedelta(days=2))
            for _ in range(400):  # the sweep runs every 50 ms: up to 20 s for a busy box
                entries = await services.credits.transactions("alice")
                if any(e.type == TransactionType.EXPIRE for e in entries):
                    break
                await asyncio.sleep(0.05)
            balance = await client.get("/api/v1/internal/credits/balance/alice", headers=service())
            assert (await balance.json())["balance"] == 12
            history = await client.get(
                "/api/v1/credits/transactions", headers=bearer(jwks.token("alice"))
            )
            assert history.status == 200
            newest = (await history.json())[0]
            assert (newest["type"], newest["amount"], newest["appId"]) == ("expire", -30, "system")
        assert (await services.reconcile.run()).ok
    finally:
        await services.close()
