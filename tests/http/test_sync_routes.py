"""Cloud Sync routes over HTTP, and the notification client against a loopback server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.notify import HttpNotifier
from mana_credits_core import TransactionType
from mana_credits_core.services import Services

from .conftest import Jwks, bearer, service

Client = TestClient[web.Request, web.Application]
STATUS_KEYS = {"active", "interval", "nextChargeAt", "pausedAt", "gifted"}


async def test_user_sync_lifecycle(client: Client, jwks: Jwks, app_services: Services) -> None:
    await app_services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
    alice = bearer(jwks.token("alice"))
    status = await (await client.get("/api/v1/sync/status", headers=alice)).json()
    assert status == {
        "active": False,
        "interval": "monthly",
        "nextChargeAt": None,
        "pausedAt": None,
        "gifted": False,
    }
    activated = await client.post(
        "/api/v1/sync/activate", json={"interval": "quarterly"}, headers=alice
    )
    body = await activated.json()
    assert set(body) == {"success", "active", "interval", "nextChargeAt", "amountCharged"}
    assert (body["interval"], body["amountCharged"]) == ("quarterly", 90)
    again = await client.post("/api/v1/sync/activate", headers=alice)
    assert (again.status, (await again.json())["message"]) == (400, "Sync is already active")
    changed = await client.post(
        "/api/v1/sync/change-interval", json={"interval": "monthly"}, headers=alice
    )
    changed_body = await changed.json()
    assert set(changed_body) == {"success", "interval", "amountCharged", "effectiveAt"}
    # The next charge's amount (monthly: 30), as the old service answered; none now.
    assert (changed_body["interval"], changed_body["amountCharged"]) == ("monthly", 30)
    assert changed_body["effectiveAt"] == body["nextChargeAt"]
    bad = await client.post(
        "/api/v1/sync/change-interval", json={"interval": "weekly"}, headers=alice
    )
    assert bad.status == 400
    off = await client.post("/api/v1/sync/deactivate", headers=alice)
    assert await off.json() == {"success": True}
    off_again = await client.post("/api/v1/sync/deactivate", headers=alice)
    assert (off_again.status, (await off_again.json())["message"]) == (400, "Sync is not active")
    # Back inside the quarter already paid for: resumed, nothing charged now.
    resumed = await client.post("/api/v1/sync/activate", json={"interval": "yearly"}, headers=alice)
    resumed_body = await resumed.json()
    assert (resumed.status, resumed_body["amountCharged"]) == (200, 0)
    assert (resumed_body["interval"], resumed_body["nextChargeAt"]) == (
        "yearly",
        body["nextChargeAt"],
    )


async def test_admin_gifts_and_internal_status(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    admin = bearer(jwks.token("root", role="admin"))
    gifted = await client.post("/api/v1/admin/sync/bob/gift", headers=admin)
    expected = {"success": True, "userId": "bob", "gifted": True, "active": True}
    assert await gifted.json() == expected
    assert await (await client.post("/api/v1/admin/sync/bob/gift", headers=admin)).json() == (
        expected
    )
    status = await (await client.get("/api/v1/admin/sync/bob", headers=admin)).json()
    assert set(status) == STATUS_KEYS
    assert (status["active"], status["gifted"]) == (True, True)
    internal = await client.get("/api/v1/internal/sync/status/bob", headers=service())
    assert await internal.json() == status
    refused = await client.post("/api/v1/sync/activate", headers=bearer(jwks.token("bob")))
    assert (await refused.json())["message"] == "Sync is already gifted — no activation needed"
    revoked = await client.delete("/api/v1/admin/sync/bob/gift", headers=admin)
    assert await revoked.json() == {
        "success": True,
        "userId": "bob",
        "gifted": False,
        "active": False,
    }
    twice = await client.delete("/api/v1/admin/sync/bob/gift", headers=admin)
    assert (await twice.json())["message"] == "Sync is not gifted — nothing to revoke"
    missing = await client.delete("/api/v1/admin/sync/nobody/gift", headers=admin)
    assert (missing.status, (await missing.json())["message"]) == (
        404,
        "No sync subscription found for user",
    )
    user = await client.post("/api/v1/admin/sync/bob/gift", headers=bearer(jwks.token("bob")))
    assert user.status == 403


async def test_charge_recurring_endpoint(client: Client, app_services: Services) -> None:
    response = await client.post("/api/v1/internal/sync/charge-recurring", headers=service())
    assert await response.json() == {"charged": 0, "paused": 0, "errors": 0, "total": 0}


@pytest.fixture
async def notification_service() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    async def send(request: web.Request) -> web.Response:
        if request.headers.get("X-Service-Key") != "svc":
            return web.Response(status=401)
        received.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/api/v1/notifications/send", send)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), received
    await server.close()


async def test_the_pause_notification_reaches_the_notification_service(
    notification_service: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = notification_service
    notifier = HttpNotifier(url, "svc")
    try:
        await notifier.sync_paused("alice", interval="monthly", required=30)
    finally:
        await notifier.close()
    assert len(received) == 1
    sent = received[0]
    assert (sent["channel"], sent["appId"], sent["userId"]) == ("email", "sync", "alice")
    assert sent["data"]["type"] == "sync-paused"
    assert sent["subject"]
    wrong = HttpNotifier(url, "wrong-key")
    try:
        with pytest.raises(Exception, match="401"):
            await wrong.sync_paused("alice", interval="monthly", required=30)
    finally:
        await wrong.close()
