"""Reservations past their time-to-live over HTTP: the TTL decides, not the sweep."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import ManualClock
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core import ReservationStatus, TransactionType
from mana_credits_core.services import Services
from mana_credits_http import create_app

from .conftest import service, settings_like

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def short_ttl(sql_store: SqlStore, http_settings: Settings, clock: ManualClock) -> Services:
    settings = settings_like(http_settings, MANA_CREDITS_RESERVATION_TTL=2)
    return build_services(sql_store, settings, clock=clock)


@pytest.fixture
async def client(short_ttl: Services, http_settings: Settings) -> AsyncIterator[Client]:
    settings = settings_like(http_settings, MANA_CREDITS_RESERVATION_TTL=2)
    app = create_app(settings, services=short_ttl)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


async def reserve(client: Client, amount: int) -> str:
    response = await client.post(
        "/api/v1/internal/credits/reserve",
        json={"userId": "u1", "amount": amount, "reason": "render"},
        headers=service("render-app"),
    )
    assert response.status == 200, await response.text()
    reservation_id: str = (await response.json())["reservationId"]
    return reservation_id


@pytest.mark.parametrize("action", ["commit", "refund-reservation"])
async def test_a_call_past_the_ttl_answers_expired_and_releases_the_hold(
    client: Client, short_ttl: Services, clock: ManualClock, action: str
) -> None:
    await short_ttl.credits.credit("u1", 50, TransactionType.GRANT, "funds")
    rid = await reserve(client, 20)
    clock.advance(timedelta(seconds=5))  # the sweep has not run
    verb = "commit" if action == "commit" else "refund"
    for _ in range(2):  # the first call releases; a retry is told the same
        response = await client.post(
            f"/api/v1/internal/credits/{action}", json={"reservationId": rid}, headers=service()
        )
        assert response.status == 400
        answer = await response.json()
        assert answer["message"] == f"Cannot {verb} reservation in status: expired"
        assert answer["code"] == "reservation_not_pending"
    balance = await client.get("/api/v1/internal/credits/balance/u1", headers=service())
    assert (await balance.json())["balance"] == 50
    assert (await short_ttl.reservations.get(rid)).status == ReservationStatus.EXPIRED
    assert await short_ttl.reservations.release_expired() == 0
    assert (await short_ttl.reconcile.run()).ok


async def test_within_the_ttl_commit_answers_200(
    client: Client, short_ttl: Services, clock: ManualClock
) -> None:
    await short_ttl.credits.credit("u1", 50, TransactionType.GRANT, "funds")
    rid = await reserve(client, 20)
    clock.advance(timedelta(seconds=1))
    response = await client.post(
        "/api/v1/internal/credits/commit", json={"reservationId": rid}, headers=service()
    )
    assert response.status == 200
    assert (await short_ttl.credits.balance("u1")).balance == 30
