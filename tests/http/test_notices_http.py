"""The expiry and low-balance notices through the HTTP notifier, against a fake
notification service on loopback that can be taken down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.memory import MemoryStore
from mana_credits_adapters.notify import HttpNotifier
from mana_credits_adapters.settings import Settings
from mana_credits_core.services import Services


@dataclass
class NotificationService:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False


@pytest.fixture
async def notification_service() -> AsyncIterator[NotificationService]:
    service = NotificationService("")

    async def send(request: web.Request) -> web.Response:
        if request.headers.get("X-Service-Key") != "svc":
            return web.Response(status=401)
        if service.down:
            return web.Response(status=503)
        service.received.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/api/v1/notifications/send", send)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    service.url = str(server.make_url("")).rstrip("/")
    yield service
    await server.close()


@pytest.fixture
async def services(
    notification_service: NotificationService, tmp_path: Path
) -> AsyncIterator[Services]:
    notifier = HttpNotifier(notification_service.url, "svc")
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    built = build_services(
        MemoryStore(),
        Settings(MANA_CREDITS_HOME=tmp_path),
        clock=TickingClock(start),
        notifier=notifier,
    )
    yield built
    await built.close()
    await notifier.close()


async def test_the_expiry_notice_reaches_the_service_after_it_comes_back(
    services: Services, notification_service: NotificationService
) -> None:
    s, service = services, notification_service
    expires = datetime(2026, 3, 5, 18, tzinfo=UTC)
    await s.credits.grant("ana", 200, "welcome", "ops", expires_at=expires)
    service.down = True
    assert await s.lots.send_expiry_notices() == 0  # refused: the claim is released
    assert service.received == []
    service.down = False
    assert await s.lots.send_expiry_notices() == 1
    assert await s.lots.send_expiry_notices() == 0
    [sent] = service.received
    assert (sent["channel"], sent["appId"], sent["userId"]) == ("email", "credits", "ana")
    assert sent["subject"] == "200 credits expire on 2026-03-05"
    assert sent["data"] == {
        "type": "credits-expiring",
        "credits": 200,
        "expiresAt": "2026-03-05T18:00:00+00:00",
    }


async def test_the_low_balance_notice_reaches_the_service_and_its_failure_is_harmless(
    services: Services, notification_service: NotificationService
) -> None:
    s, service = services, notification_service
    await s.credits.grant("ana", 60, "welcome", "ops")
    await s.credits.use("ana", 20, "chat", "work")
    assert s.credits.alerts is not None
    await s.credits.alerts.drain()  # sent in the background: the debit did not wait
    [sent] = service.received
    assert (sent["appId"], sent["userId"]) == ("credits", "ana")
    assert sent["data"] == {"type": "low-balance", "balance": 40, "threshold": 50}
    await s.credits.grant("ana", 60, "again", "ops")  # 100
    service.down = True
    used = await s.credits.use("ana", 90, "chat", "more")  # crosses; the notice fails
    assert used.balance is not None
    assert used.balance.balance == 10
    await s.credits.alerts.drain()
    assert len(service.received) == 1


async def test_an_unreachable_service_raises_for_the_caller_to_handle(tmp_path: Path) -> None:
    notifier = HttpNotifier("http://127.0.0.1:9", "svc", timeout=2.0)  # nothing listens
    try:
        with pytest.raises(aiohttp.ClientError):
            await notifier.credits_expiring(
                "ana", credits=5, expires_at=datetime.now(UTC) + timedelta(days=2)
            )
    finally:
        await notifier.close()
