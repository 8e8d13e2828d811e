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
from mana_credits_adapters.payments import stripe_gateway
from mana_credits_adapters.payments.stripe_gateway import StripeGateway
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core import TransactionType
from mana_credits_core.errors import InvalidWebhook, PaymentProviderUnavailable
from mana_credits_core.purchases import Package, PaymentRef
from mana_credits_core.services import Services
from mana_credits_http import create_app

from ..fakes.stripe_model import Json
from ..fakes.stripe_server import (
    SECRET_KEY,
    WEBHOOK_SECRET,
    FakeStripe,
    event,
    payload,
    sign,
    start_fake_stripe,
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


async def deliver(client: Client, sent: bytes | Json, signature: str | None = None) -> int:
    """POST an event (published by the fake, or already serialised) as Stripe does."""
    body = sent if isinstance(sent, bytes) else payload(sent)
    headers = {"Content-Type": "application/json", "Stripe-Signature": signature or sign(body)}
    response = await client.post(WEBHOOK, data=body, headers=headers)
    answer = await response.json()
    if response.status == 200:
        assert answer == {"received": True}
    return response.status


def of_type(events: list[Json], kind: str) -> Json:
    return next(e for e in events if e["type"] == kind)


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
    assert all(key for _, _, key in fake_stripe.requests), "every Stripe write is idempotent"

    paid = of_type(fake_stripe.pay(intent["id"]), "payment_intent.succeeded")
    assert await deliver(client, paid) == 200
    assert await deliver(client, paid) == 200  # Stripe retries: same event again
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
    published = fake_stripe.complete_checkout(session["id"])
    assert await deliver(client, of_type(published, "payment_intent.succeeded")) == 200
    assert await deliver(client, of_type(published, "checkout.session.completed")) == 200
    purchase = await shop.purchases.get(started["purchaseId"])
    assert (
        purchase.stripe_payment_intent_id == fake_stripe.sessions[session["id"]]["payment_intent"]
    )
    assert await balance(shop) == 1100
    assert (await shop.reconcile.run()).ok


async def test_twenty_concurrent_deliveries_credit_once(
    client: Client, shop: Services, package: Package, jwks: Jwks, fake_stripe: FakeStripe
) -> None:
    await buy(client, jwks.token(), package)
    intent = next(iter(fake_stripe.intents.values()))
    same = of_type(fake_stripe.pay(intent["id"]), "payment_intent.succeeded")
    others = [same | {"id": f"{same['id']}_{n}"} for n in range(10)]  # resent by Stripe
    statuses = await asyncio.gather(*(deliver(client, p) for p in [same] * 10 + others))
    assert statuses == [200] * 20
    assert await balance(shop) == 1100
    assert (await shop.reconcile.run()).ok


async def test_a_late_failure_never_undoes_a_success(
    client: Client, shop: Services, package: Package, jwks: Jwks, fake_stripe: FakeStripe
) -> None:
    started = await buy(client, jwks.token(), package)
    intent = next(iter(fake_stripe.intents.values()))
    [failed] = fake_stripe.fail(intent["id"])  # a first attempt declined, told late
    paid = of_type(fake_stripe.pay(intent["id"]), "payment_intent.succeeded")
    assert await deliver(client, paid) == 200
    assert await deliver(client, failed) == 200
    purchase = await shop.purchases.get(started["purchaseId"])
    assert purchase.status == "completed"
    assert await balance(shop) == 1100


async def test_a_retry_after_a_failure_completes_the_purchase(
    client: Client, shop: Services, package: Package, jwks: Jwks, fake_stripe: FakeStripe
) -> None:
    started = await buy(client, jwks.token(), package)
    intent = next(iter(fake_stripe.intents.values()))
    assert await deliver(client, fake_stripe.fail(intent["id"])[0]) == 200
    assert (await shop.purchases.get(started["purchaseId"])).status == "failed"
    paid = of_type(fake_stripe.pay(intent["id"]), "payment_intent.succeeded")
    assert await deliver(client, paid) == 200
    assert (await shop.purchases.get(started["purchaseId"])).status == "completed"
    assert await balance(shop) == 1100


@pytest.mark.parametrize(
    "change",
    [{"amount": 1}, {"currency": "usd"}, {"id": "another"}],
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
    started = await buy(client, jwks.token(), package)
    intent = next(iter(fake_stripe.intents.values()))
    if "id" in change:  # another PaymentIntent claiming to pay for our purchase
        customer = intent["customer"]
        params = {"amount": 1000, "currency": "eur", "customer": customer}
        intent = fake_stripe.create_intent(params | {"metadata": dict(intent["metadata"])})
    else:  # Stripe's record of our PaymentIntent says another amount or currency
        intent.update(change)
    paid = of_type(fake_stripe.pay(intent["id"]), "payment_intent.succeeded")
    assert await deliver(client, paid) == 200
    assert await balance(shop) == 0
    assert (await shop.purchases.get(started["purchaseId"])).status == "pending"


async def test_unknown_and_processing_events_are_acknowledged(client: Client) -> None:
    assert await deliver(client, event("customer.created", {"id": "cus_1"})) == 200
    assert await deliver(client, event("payment_intent.processing", {"id": "pi_1"})) == 200


async def test_bad_signatures_are_refused_and_change_nothing(
    client: Client, shop: Services, package: Package, jwks: Jwks, fake_stripe: FakeStripe
) -> None:
    await buy(client, jwks.token(), package)
    intent = next(iter(fake_stripe.intents.values()))
    # Paid at Stripe: a badly signed event must not even make us read it.
    body = payload(of_type(fake_stripe.pay(intent["id"]), "payment_intent.succeeded"))
    reads = len(fake_stripe.requests)
    missing = await client.post(WEBHOOK, data=body)
    assert (missing.status, await missing.json()) == (400, {"error": "Missing signature"})
    stale = sign(body, timestamp=int(time.time()) - 301)
    reserialised = json.dumps(json.loads(body), indent=2).encode()
    for sent, signature in [
        (body, sign(body, secret="whsec_wrong")),
        (body, stale),
        (reserialised, sign(body)),
        (body, "t=1,v1=deadbeef"),
        (body, "garbage"),
    ]:
        response = await client.post(WEBHOOK, data=sent, headers={"Stripe-Signature": signature})
        assert (response.status, await response.json()) == (400, {"error": "Invalid signature"})
    assert await balance(shop) == 0
    assert len(fake_stripe.requests) == reads


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
    body = payload(of_type(fake_stripe.pay(intent["id"]), "payment_intent.succeeded"))
    headers = {"Stripe-Signature": sdk_signature(body, int(time.time()) + ahead)}
    response = await client.post(WEBHOOK, data=body, headers=headers)
    assert (response.status, await response.json()) == (400, {"error": "Invalid signature"})
    assert await balance(shop) == 0
    # The same event signed now is still applied: the refusal recorded nothing.
    assert await deliver(client, body, sdk_signature(body, int(time.time()))) == 200
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
    body = payload(of_type(fake_stripe.pay(intent["id"]), "payment_intent.succeeded"))
    assert await deliver(client, body, sdk_signature(body, int(time.time()) + offset)) == 200
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
    intent = next(iter(fake_stripe.intents.values()))["id"]
    assert (
        await deliver(client, of_type(fake_stripe.pay(intent), "payment_intent.succeeded")) == 200
    )
    half = of_type(fake_stripe.refund(intent, 500), "charge.refunded")
    assert await deliver(client, half) == 200
    assert await deliver(client, half | {"id": f"{half['id']}_again"}) == 200
    assert await balance(shop) == 550
    rest = fake_stripe.refund(intent)
    statuses = await asyncio.gather(*(deliver(client, p) for p in [*rest, half] * 5))
    assert statuses == [200] * 15
    assert await balance(shop) == 0
    entries = await shop.credits.transactions("alice")
    clawbacks = [e.amount for e in entries if e.type == TransactionType.CLAWBACK]
    assert sorted(clawbacks) == [-550, -550]
    assert (await shop.reconcile.run()).ok


async def test_a_clawback_beyond_the_balance_becomes_debt_paid_by_the_next_top_up(
    client: Client, shop: Services, package: Package, jwks: Jwks, fake_stripe: FakeStripe
) -> None:
    await buy(client, jwks.token(), package)
    first = next(iter(fake_stripe.intents.values()))["id"]
    assert await deliver(client, of_type(fake_stripe.pay(first), "payment_intent.succeeded")) == 200
    await shop.credits.use("alice", 1000, "chat", "spent most of it")
    assert await deliver(client, fake_stripe.dispute(first)[0]) == 200
    after = await shop.credits.balance("alice")
    assert (after.balance, after.debt) == (0, 1000)

    await buy(client, jwks.token(), package)
    second = next(i for i in fake_stripe.intents if i != first)
    assert (
        await deliver(client, of_type(fake_stripe.pay(second), "payment_intent.succeeded")) == 200
    )
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


async def test_a_hung_stripe_api_makes_the_state_read_unavailable_within_its_deadline(
    fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_stripe.reset()  # the fake is shared: no failure left by an earlier test
    monkeypatch.setattr(stripe_gateway, "STATE_DEADLINE", 0.5)
    gateway = StripeGateway(SECRET_KEY, WEBHOOK_SECRET, api_base=fake_stripe.url)
    fake_stripe.hang = asyncio.Event()  # Stripe accepts the connection, answers nothing
    try:
        # Bounded far below the SDK's own timeout and retries (10 s per call, twice).
        with pytest.raises(PaymentProviderUnavailable):
            await asyncio.wait_for(gateway.payment_state(PaymentRef("pi_any")), 5)
    finally:
        fake_stripe.hang.set()
        fake_stripe.reset()
        await gateway.close()
