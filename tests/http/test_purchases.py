"""Buying credits end to end: the real stripe SDK against a local fake Stripe server,
webhooks signed with Stripe's scheme, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.payments.stripe_gateway import StripeGateway
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core import TransactionType
from mana_credits_core.errors import InvalidWebhook
from mana_credits_core.purchases import Package
from mana_credits_core.services import Services
from mana_credits_http import create_app

from ..fakes.stripe_server import (
    SECRET_KEY,
    WEBHOOK_SECRET,
    FakeStripe,
    charge,
    dispute,
    event,
    sign,
    start_fake_stripe,
    succeeded,
)
from .conftest import Jwks, bearer, settings_like
from .deep_json import DEEP

Client = TestClient[web.Request, web.Application]
WEBHOOK = "/api/v1/webhooks/stripe"


@pytest.fixture(scope="session")
async def fake_stripe() -> AsyncIterator[FakeStripe]:
    fake, server = await start_fake_stripe()
    yield fake
    await server.close()


@pytest.fixture
def shop_settings(http_settings: Settings, fake_stripe: FakeStripe, tmp_path: Path) -> Settings:
    fake_stripe.reset()
    return settings_like(
        http_settings,
        STRIPE_SECRET_KEY=SECRET_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=fake_stripe.url,
    )


@pytest.fixture
async def shop(sql_store: SqlStore, shop_settings: Settings) -> AsyncIterator[Services]:
    services = build_services(sql_store, shop_settings, clock=TickingClock())
    yield services
    await services.payments.close()


@pytest.fixture
async def package(shop: Services) -> Package:
    return await shop.purchases.add_package("Plus", 1100, 1000, description="1,100 credits")


@pytest.fixture
async def client(shop: Services, shop_settings: Settings) -> AsyncIterator[Client]:
    app = create_app(shop_settings, services=shop)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


async def buy(client: Client, token: str, package: Package, **extra: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/credits/purchase", json={"packageId": package.id} | extra, headers=bearer(token)
    )
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def deliver(client: Client, payload: bytes, signature: str | None = None) -> int:
    headers = {"Content-Type": "application/json", "Stripe-Signature": signature or sign(payload)}
    response = await client.post(WEBHOOK, data=payload, headers=headers)
    body = await response.json()
    if response.status == 200:
        assert body == {"received": True}
    return response.status


async def balance(shop: Services, user: str = "alice") -> int:
    return (await shop.credits.balance(user)).balance


async def test_packages_are_public_and_sorted(client: Client, shop: Services) -> None:
    await shop.purchases.add_package("Big", 6000, 5000, sort_order=2)
    hidden = await shop.purchases.add_package("Old", 10, 10, sort_order=0)
    await shop.purchases.update_package(hidden.id, active=False)
    await shop.purchases.add_package("Small", 500, 500, sort_order=1)
    response = await client.get("/api/v1/credits/packages")
    listed = await response.json()
    assert [p["name"] for p in listed] == ["Small", "Big"]
    assert set(listed[0]) == {
        "id",
        "name",
        "description",
        "credits",
        "priceEuroCents",
        "stripePriceId",
        "active",
        "sortOrder",
        "metadata",
        "createdAt",
        "updatedAt",
    }


async def test_payment_intent_purchase_is_credited_once(
    client: Client, shop: Services, package: Package, jwks: Jwks, fake_stripe: FakeStripe
) -> None:
    started = await buy(client, jwks.token(), package)
    assert set(started) == {"purchaseId", "clientSecret", "amount", "credits"}
    assert (started["amount"], started["credits"]) == (1000, 1100)
    intent = next(iter(fake_stripe.intents.values()))
    assert started["clientSecret"] == intent["client_secret"]
    assert intent["metadata"]["purchaseId"] == started["purchaseId"]
    assert (intent["amount"], intent["currency"]) == (1000, "eur")
    assert all(key for _, _, key in fake_stripe.requests), "every Stripe call is idempotent"

    payload = event("payment_intent.succeeded", succeeded(intent))
    assert await deliver(client, payload) == 200
    assert await deliver(client, payload) == 200  # Stripe retries: same event again
    assert await balance(shop) == 1100
    status = await client.get(
        f"/api/v1/credits/purchase/{started['purchaseId']}", headers=bearer(jwks.token())
    )
    shown = await status.json()
    assert (shown["status"], shown["stripePaymentIntentId"]) == ("completed", intent["id"])
    assert shown["completedAt"] is not None
    entries = await shop.credits.transactions("alice")
    assert [(e.type, e.amount) for e in entries] == [(TransactionType.PURCHASE, 1100)]
    assert (await shop.reconcile.run()).ok


async def test_one_customer_per_user_even_when_buying_concurrently(
    client: Client, shop: Services, package: Package, jwks: Jwks, fake_stripe: FakeStripe
) -> None:
    token = jwks.token()
    await asyncio.gather(*(buy(client, token, package) for _ in range(5)))
    assert len(fake_stripe.customers) == 1
    assert len(fake_stripe.intents) == 5
    listed = await (await client.get("/api/v1/credits/purchases", headers=bearer(token))).json()
    assert len(listed) == 5
    assert len({p["stripeCustomerId"] for p in listed}) == 1


async def test_checkout_purchase_credits_once_through_either_event(
    client: Client, shop: Services, package: Package, jwks: Jwks, fake_stripe: FakeStripe
) -> None:
    started = await buy(
        client,
        jwks.token(),
        package,
        successUrl="https://app.example/ok",
        cancelUrl="https://app.example/cancel",
    )
    assert set(started) == {"purchaseId", "checkoutUrl", "amount", "credits"}
    session = next(iter(fake_stripe.sessions.values()))
    assert started["checkoutUrl"] == session["url"]
    assert session["payment_intent_data"]["metadata"]["purchaseId"] == started["purchaseId"]
    completed = session | {"payment_status": "paid", "payment_intent": "pi_from_checkout"}
    intent = {
        "id": "pi_from_checkout",
        "object": "payment_intent",
        "amount": 1000,
        "currency": "eur",
        "status": "succeeded",
        "metadata": session["payment_intent_data"]["metadata"],
    }
    assert await deliver(client, event("payment_intent.succeeded", intent)) == 200
    assert await deliver(client, event("checkout.session.completed", completed)) == 200
    assert await balance(shop) == 1100
    assert (await shop.reconcile.run()).ok


async def test_twenty_concurrent_deliveries_credit_once(
    client: Client, shop: Services, package: Package, jwks: Jwks, fake_stripe: FakeStripe
) -> None:
    await buy(client, jwks.token(), package)
    intent = next(iter(fake_stripe.intents.values()))
    same = event("payment_intent.succeeded", succeeded(intent))
    others = [event("payment_intent.succeeded", succeeded(intent)) for _ in range(10)]
    statuses = await asyncio.gather(*(deliver(client, p) for p in [same] * 10 + others))
    assert statuses == [200] * 20
    assert await balance(shop) == 1100
    assert (await shop.reconcile.run()).ok


async def test_a_late_failure_never_undoes_a_success(
    client: Client, shop: Services, package: Package, jwks: Jwks, fake_stripe: FakeStripe
) -> None:
    started = await buy(client, jwks.token(), package)
    intent = next(iter(fake_stripe.intents.values()))
    assert await deliver(client, event("payment_intent.succeeded", succeeded(intent))) == 200
    failed = intent | {"status": "requires_payment_method"}
    assert await deliver(client, event("payment_intent.payment_failed", failed)) == 200
    purchase = await shop.purchases.get(started["purchaseId"])
    assert purchase.status == "completed"
    assert await balance(shop) == 1100


async def test_a_retry_after_a_failure_completes_the_purchase(
    client: Client, shop: Services, package: Package, jwks: Jwks, fake_stripe: FakeStripe
) -> None:
    started = await buy(client, jwks.token(), package)
    intent = next(iter(fake_stripe.intents.values()))
    assert await deliver(client, event("payment_intent.payment_failed", intent)) == 200
    assert (await shop.purchases.get(started["purchaseId"])).status == "failed"
    assert await deliver(client, event("payment_intent.succeeded", succeeded(intent))) == 200
    assert (await shop.purchases.get(started["purchaseId"])).status == "completed"
    assert await balance(shop) == 1100


@pytest.mark.parametrize(
    "change",
    [{"amount": 1}, {"currency": "usd"}, {"id": "pi_someone_else"}],
    ids=["amount", "currency", "intent"],
)
async def test_mismatched_payments_are_acknowledged_but_not_credited(
    client: Client,
    shop: Services,
    package: Package,
    jwks: Jwks,
    fake_stripe: FakeStripe,
    change: dict[str, Any],
) -> None:
    await buy(client, jwks.token(), package)
    intent = next(iter(fake_stripe.intents.values()))
    assert (
        await deliver(client, event("payment_intent.succeeded", succeeded(intent, **change))) == 200
    )
    assert await balance(shop) == 0


async def test_unknown_and_processing_events_are_acknowledged(client: Client) -> None:
    assert await deliver(client, event("customer.created", {"id": "cus_1"})) == 200
    assert await deliver(client, event("payment_intent.processing", {"id": "pi_1"})) == 200


async def test_bad_signatures_are_refused_and_change_nothing(
    client: Client, shop: Services, package: Package, jwks: Jwks, fake_stripe: FakeStripe
) -> None:
    await buy(client, jwks.token(), package)
    intent = next(iter(fake_stripe.intents.values()))
    payload = event("payment_intent.succeeded", succeeded(intent))
    missing = await client.post(WEBHOOK, data=payload)
    assert (missing.status, await missing.json()) == (400, {"error": "Missing signature"})
    stale = sign(payload, timestamp=int(time.time()) - 301)
    reserialised = json.dumps(json.loads(payload), indent=2).encode()
    for body, signature in [
        (payload, sign(payload, secret="whsec_wrong")),
        (payload, stale),
        (reserialised, sign(payload)),
        (payload, "t=1,v1=deadbeef"),
        (payload, "garbage"),
    ]:
        response = await client.post(WEBHOOK, data=body, headers={"Stripe-Signature": signature})
        assert (response.status, await response.json()) == (400, {"error": "Invalid signature"})
    assert await balance(shop) == 0


def sdk_signature(payload: bytes, timestamp: int, secret: str = WEBHOOK_SECRET) -> str:
    """A `Stripe-Signature` header as the stripe SDK makes one."""
    header: str = stripe.WebhookSignature.generate_signature_header(
        payload.decode(), secret, timestamp=timestamp
    )
    return header


DAY, TEN_YEARS = 86_400, 3650 * 86_400


@pytest.mark.parametrize("ahead", [301, 3_600, DAY, TEN_YEARS], ids=["301s", "1h", "1d", "10y"])
async def test_a_signature_dated_in_the_future_is_refused_and_changes_nothing(
    client: Client,
    shop: Services,
    package: Package,
    jwks: Jwks,
    fake_stripe: FakeStripe,
    ahead: int,
) -> None:
    await buy(client, jwks.token(), package)
    intent = next(iter(fake_stripe.intents.values()))
    payload = event("payment_intent.succeeded", succeeded(intent))
    headers = {"Stripe-Signature": sdk_signature(payload, int(time.time()) + ahead)}
    response = await client.post(WEBHOOK, data=payload, headers=headers)
    assert (response.status, await response.json()) == (400, {"error": "Invalid signature"})
    assert await balance(shop) == 0
    # The same event signed now is still applied: the refusal recorded nothing.
    assert await deliver(client, payload, sdk_signature(payload, int(time.time()))) == 200
    assert await balance(shop) == 1100


@pytest.mark.parametrize("offset", [-240, 240], ids=["4min-ago", "4min-ahead"])
async def test_a_signature_within_the_tolerance_either_way_is_accepted(
    client: Client,
    shop: Services,
    package: Package,
    jwks: Jwks,
    fake_stripe: FakeStripe,
    offset: int,
) -> None:
    await buy(client, jwks.token(), package)
    intent = next(iter(fake_stripe.intents.values()))
    payload = event("payment_intent.succeeded", succeeded(intent))
    assert await deliver(client, payload, sdk_signature(payload, int(time.time()) + offset)) == 200
    assert await balance(shop) == 1100


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-301, False), (-300, True), (0, True), (300, True), (301, False)],
)
async def test_the_tolerance_is_300_seconds_on_the_gateways_clock(
    offset: int, accepted: bool
) -> None:
    signed_at = 1_900_000_000
    gateway = StripeGateway(SECRET_KEY, WEBHOOK_SECRET, wallclock=lambda: signed_at - offset)
    payload = event("customer.created", {"id": "cus_1"})
    try:
        if accepted:
            gateway.verify_webhook(payload, sdk_signature(payload, signed_at))
        else:
            with pytest.raises(InvalidWebhook):
                gateway.verify_webhook(payload, sdk_signature(payload, signed_at))
    finally:
        await gateway.close()


@pytest.mark.parametrize("shape", sorted(DEEP))
async def test_a_signed_body_nested_too_deep_for_the_parser_is_a_400(
    client: Client, shop: Services, shape: str
) -> None:
    inner = DEEP[shape].encode()
    payload = b'{"id": "evt_deep", "type": "customer.created", "data": ' + inner + b"}"
    response = await client.post(WEBHOOK, data=payload, headers={"Stripe-Signature": sign(payload)})
    assert (response.status, await response.json()) == (400, {"error": "Invalid signature"})


async def test_refunds_and_disputes_claw_back_once(
    client: Client, shop: Services, package: Package, jwks: Jwks, fake_stripe: FakeStripe
) -> None:
    await buy(client, jwks.token(), package)
    intent = next(iter(fake_stripe.intents.values()))
    assert await deliver(client, event("payment_intent.succeeded", succeeded(intent))) == 200
    half = event("charge.refunded", charge(intent["id"], 1000, 500))
    assert await deliver(client, half) == 200
    assert await deliver(client, event("charge.refunded", charge(intent["id"], 1000, 500))) == 200
    assert await balance(shop) == 550
    full = event("charge.refunded", charge(intent["id"], 1000, 1000))
    dispute_event = event("charge.dispute.created", dispute(intent["id"], 1000))
    statuses = await asyncio.gather(*(deliver(client, p) for p in [full, dispute_event] * 5))
    assert statuses == [200] * 10
    assert await balance(shop) == 0
    entries = await shop.credits.transactions("alice")
    clawbacks = [e.amount for e in entries if e.type == TransactionType.CLAWBACK]
    assert sorted(clawbacks) == [-550, -550]
    assert (await shop.reconcile.run()).ok


async def test_a_clawback_beyond_the_balance_becomes_debt_paid_by_the_next_top_up(
    client: Client, shop: Services, package: Package, jwks: Jwks, fake_stripe: FakeStripe
) -> None:
    await buy(client, jwks.token(), package)
    first = next(iter(fake_stripe.intents.values()))
    assert await deliver(client, event("payment_intent.succeeded", succeeded(first))) == 200
    await shop.credits.use("alice", 1000, "chat", "spent most of it")
    assert await deliver(client, event("charge.dispute.created", dispute(first["id"], 1000))) == 200
    after = await shop.credits.balance("alice")
    assert (after.balance, after.debt) == (0, 1000)

    await buy(client, jwks.token(), package)
    second = next(i for i in fake_stripe.intents.values() if i["id"] != first["id"])
    assert await deliver(client, event("payment_intent.succeeded", succeeded(second))) == 200
    topped = await shop.credits.balance("alice")
    assert (topped.balance, topped.debt) == (100, 0)
    assert (await shop.reconcile.run()).ok


async def test_purchases_of_other_users_are_not_found(
    client: Client, shop: Services, package: Package, jwks: Jwks
) -> None:
    started = await buy(client, jwks.token("alice"), package)
    path = f"/api/v1/credits/purchase/{started['purchaseId']}"
    assert (await client.get(path, headers=bearer(jwks.token("mallory")))).status == 404
    assert (await client.get(path + "x", headers=bearer(jwks.token("alice")))).status == 404
    mine = await client.get("/api/v1/credits/purchases", headers=bearer(jwks.token("mallory")))
    assert await mine.json() == []


async def test_inactive_or_unknown_packages_are_404(
    client: Client, shop: Services, package: Package, jwks: Jwks
) -> None:
    await shop.purchases.update_package(package.id, active=False)
    for package_id in (package.id, "no-such-package"):
        response = await client.post(
            "/api/v1/credits/purchase", json={"packageId": package_id}, headers=bearer(jwks.token())
        )
        assert response.status == 404
        assert (await response.json())["message"] == "Package not found or inactive"


async def test_checkout_needs_both_urls(client: Client, package: Package, jwks: Jwks) -> None:
    for extra in ({"successUrl": "https://a.example/ok"}, {"cancelUrl": "javascript:alert(1)"}):
        response = await client.post(
            "/api/v1/credits/purchase",
            json={"packageId": package.id} | extra,
            headers=bearer(jwks.token()),
        )
        assert response.status == 400


@pytest.mark.parametrize(("status", "answer"), [(500, 503), (402, 502)])
async def test_stripe_failures_are_clear_and_leave_nothing_behind(
    client: Client,
    shop: Services,
    package: Package,
    jwks: Jwks,
    fake_stripe: FakeStripe,
    status: int,
    answer: int,
) -> None:
    fake_stripe.fail_with = status
    response = await client.post(
        "/api/v1/credits/purchase", json={"packageId": package.id}, headers=bearer(jwks.token())
    )
    assert response.status == answer
    body = await response.json()
    assert body["code"].startswith("payment_provider")
    assert await shop.purchases.purchases("alice") == []
