"""/metrics counts what happened: purchases, grants, gifts, Cloud Sync, and the process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import ManualClock
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core import TransactionType
from mana_credits_core.purchases import Package
from mana_credits_core.services import Services
from mana_credits_http import create_app

from ..fakes.stripe_server import FakeStripe
from .conftest import Jwks, bearer, service
from .metrics_reading import Client, moved, scrape
from .test_purchases import (  # noqa: F401  (fixtures)
    buy,
    deliver,
    fake_stripe,
    of_type,
    package,
    shop,
    shop_settings,
)


@pytest.fixture
async def shop_client(
    shop: Services,  # noqa: F811
    shop_settings: Settings,  # noqa: F811
) -> AsyncIterator[Client]:
    """The server against the fake Stripe, so webhooks can fail, refund and dispute."""
    app = create_app(shop_settings, services=shop)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.fixture
async def clocked(
    sql_store: SqlStore, http_settings: Settings
) -> AsyncIterator[tuple[Client, Services, ManualClock]]:
    """The server on services whose clock the test moves (expiry, billing periods)."""
    clock = ManualClock()
    services = build_services(sql_store, http_settings, clock=clock)
    app = create_app(http_settings, services=services)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client, services, clock


async def test_purchase_counters(
    shop_client: Client,
    package: Package,  # noqa: F811
    jwks: Jwks,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    client = shop_client
    before = await scrape(client)
    for _ in range(3):
        await buy(client, jwks.token(), package)
    paid, unpaid, _ = list(fake_stripe.intents)
    success = of_type(fake_stripe.pay(paid), "payment_intent.succeeded")
    assert await deliver(client, success) == 200
    replay = success | {"id": success["id"] + "_resent"}
    assert await deliver(client, replay) == 200  # a second event for a credited purchase
    assert await deliver(client, fake_stripe.fail(unpaid)[0]) == 200
    refunded = of_type(fake_stripe.refund(paid, 500), "charge.refunded")
    assert await deliver(client, refunded) == 200
    again = refunded | {"id": refunded["id"] + "_resent"}
    assert await deliver(client, again) == 200  # the same refund told twice claws back once
    opened = fake_stripe.dispute(paid, 500)[0]
    assert await deliver(client, opened) == 200
    won = fake_stripe.close_dispute(opened["data"]["object"]["id"], won=True)[-1]
    assert await deliver(client, won) == 200  # the disputed half given back

    assert moved(before, await scrape(client), "mana_credits_purchase") == {
        'mana_credits_purchases_total{event="created"}': 3,
        'mana_credits_purchases_total{event="completed"}': 1,
        'mana_credits_purchases_total{event="failed"}': 1,
        'mana_credits_purchases_total{event="clawed_back"}': 2,  # half refund, then dispute
        'mana_credits_purchases_total{event="reinstated"}': 1,  # the dispute won
        'mana_credits_purchase_credits_total{event="created"}': 3300,
        'mana_credits_purchase_credits_total{event="completed"}': 1100,
        'mana_credits_purchase_credits_total{event="failed"}': 1100,
        'mana_credits_purchase_credits_total{event="clawed_back"}': 1100,  # 550 + 550
        'mana_credits_purchase_credits_total{event="reinstated"}': 550,
        'mana_credits_purchase_euro_cents_total{event="created"}': 3000,
        'mana_credits_purchase_euro_cents_total{event="completed"}': 1000,
        'mana_credits_purchase_euro_cents_total{event="failed"}': 1000,
    }


async def test_gift_and_grant_counters(
    clocked: tuple[Client, Services, ManualClock], jwks: Jwks
) -> None:
    client, services, clock = clocked
    await services.credits.credit("alice", 1000, TransactionType.REFUND, "funds")
    before = await scrape(client)
    alice = bearer(jwks.token("alice"))
    codes = []
    for credits in (10, 20, 30, 40):
        made = await client.post("/api/v1/gifts", json={"totalCredits": credits}, headers=alice)
        codes.append((await made.json()) | {"credits": credits})
    refused = await client.post("/api/v1/gifts", json={"totalCredits": 5000}, headers=alice)
    assert refused.status == 400  # more than alice has: no gift, nothing counted
    bob = bearer(jwks.token("bob"))
    assert (
        await client.post(f"/api/v1/gifts/{codes[1]['code']}/redeem", headers=bob)
    ).status == 200
    second = await client.post(f"/api/v1/gifts/{codes[1]['code']}/redeem", headers=bob)
    assert second.status == 400  # already claimed: counted once
    assert (await client.delete(f"/api/v1/gifts/{codes[0]['id']}", headers=alice)).status == 200
    assert (await client.delete(f"/api/v1/gifts/{codes[0]['id']}", headers=alice)).status == 400
    clock.advance(timedelta(days=91))
    # One expires on the spot when someone tries it, the other in the background sweep.
    late = await client.post(f"/api/v1/gifts/{codes[2]['code']}/redeem", headers=bob)
    assert late.status == 400
    assert await services.gifts.expire() == 1

    await services.credits.grant("carol", 70, "support", "ops", idempotency_key="t-1")
    await services.credits.grant("carol", 70, "support", "ops", idempotency_key="t-1")  # replay

    after = await scrape(client)
    assert moved(before, after, "mana_credits_gift") == {
        'mana_credits_gifts_total{event="created"}': 4,
        'mana_credits_gifts_total{event="redeemed"}': 1,
        'mana_credits_gifts_total{event="cancelled"}': 1,
        'mana_credits_gifts_total{event="expired"}': 2,
        'mana_credits_gift_credits_total{event="created"}': 100,
        'mana_credits_gift_credits_total{event="redeemed"}': 20,
        'mana_credits_gift_credits_total{event="cancelled"}': 10,
        'mana_credits_gift_credits_total{event="expired"}': 70,
    }
    assert moved(before, after, "mana_credits_grant") == {
        "mana_credits_grants_total": 1,
        "mana_credits_granted_credits_total": 70,
    }


async def test_sync_counters(clocked: tuple[Client, Services, ManualClock], jwks: Jwks) -> None:
    client, services, clock = clocked
    await services.credits.credit("alice", 60, TransactionType.REFUND, "funds")
    await services.credits.credit("bob", 30, TransactionType.REFUND, "funds")
    before = await scrape(client)
    for user in ("alice", "bob"):
        activated = await client.post("/api/v1/sync/activate", headers=bearer(jwks.token(user)))
        assert activated.status == 200
    broke = await client.post("/api/v1/sync/activate", headers=bearer(jwks.token("dave")))
    assert broke.status == 402  # no credits: not activated, not charged
    admin = bearer(jwks.token("root", role="admin"))
    for _ in range(2):  # idempotent: gifted once
        assert (await client.post("/api/v1/admin/sync/carol/gift", headers=admin)).status == 200
    clock.advance(timedelta(days=32))
    run = await client.post("/api/v1/internal/sync/charge-recurring", headers=service())
    # alice pays her second month; bob's balance is spent, so his sync pauses
    assert (await run.json())["charged"] == 1
    assert (await run.json())["paused"] == 1
    assert moved(before, await scrape(client), "mana_credits_sync") == {
        'mana_credits_sync_total{event="activated"}': 2,
        'mana_credits_sync_total{event="charged"}': 3,
        'mana_credits_sync_total{event="paused"}': 1,
        'mana_credits_sync_total{event="gifted"}': 1,
    }


async def test_process_metrics(client: Client) -> None:
    samples = await scrape(client)
    assert samples["process_resident_memory_bytes"] > 1_000_000
    assert samples["process_cpu_seconds_total"] > 0
    assert samples["process_open_fds"] > 0
    assert any(name.startswith("python_info{") for name in samples)


async def test_no_created_timestamp_series(
    shop_client: Client,
    package: Package,  # noqa: F811
    jwks: Jwks,
) -> None:
    await buy(shop_client, jwks.token(), package)
    text = await (await shop_client.get("/metrics")).text()
    assert 'mana_credits_purchases_total{event="created"} 1.0' in text
    assert "_created" not in text  # neither mana_credits_purchases_created{...} nor others
