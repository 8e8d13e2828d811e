"""`purchases refund` through the real stripe SDK against the fake Stripe server."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings
from mana_credits_core.services import Services
from tests.fakes.stripe_server import (
    SECRET_KEY,
    WEBHOOK_SECRET,
    FakeStripe,
    paid,
    payload,
    sign,
    start_fake_stripe,
)

from .conftest import invoke


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    """The fake on its own event loop in a thread: each CLI command runs its own loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake, server = asyncio.run_coroutine_threadsafe(start_fake_stripe(), loop).result(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def stripe_env(database_url: str, fake: FakeStripe) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": fake.url,
    }


async def deliver(services: Services, body: bytes) -> str:
    """A webhook as the server takes it: verified by the SDK, then handled."""
    return await services.purchases.handle(services.payments.verify_webhook(body, sign(body)))


def test_refund_through_stripe_claws_back_once(database_url: str, fake_stripe: FakeStripe) -> None:
    settings = Settings(**stripe_env(database_url, fake_stripe))

    async def buy() -> str:
        async with bootstrap(settings, migrate=True) as services:
            package = await services.purchases.add_package("Plus", 1100, 1000)
            started = await services.purchases.start("alice", package.id, email="a@example.com")
            intent = fake_stripe.intents[str(started.purchase.stripe_payment_intent_id)]
            assert await deliver(services, paid(fake_stripe, intent)) == "credited"
            await services.credits.use("alice", 100, "chat", "answer")
            return started.purchase.id

    purchase_id = asyncio.run(buy())
    env = stripe_env(database_url, fake_stripe)
    refund = ["purchases", "refund", purchase_id, "--reason", "charged twice", "--operator", "ops"]
    code, out = invoke(*refund, "--json", env=env)
    assert code == 0, out
    done = json.loads(out)
    assert len(fake_stripe.refunds) == 1
    stripe_refund = next(iter(fake_stripe.refunds.values()))
    assert done["refundId"] == stripe_refund["id"]
    assert (done["refundedEuroCents"], done["outcome"]) == (1000, "clawed back 1000, debt 100")
    assert stripe_refund["payment_intent"] == done["purchase"]["stripePaymentIntentId"]
    assert stripe_refund["metadata"] == {
        "operator": "ops",
        "reason": "charged twice",
        "purchaseId": purchase_id,
    }
    refunds_made = [r for r in fake_stripe.requests if r[:2] == ("POST", "/v1/refunds")]
    assert refunds_made == [("POST", "/v1/refunds", f"refund:{purchase_id}")]

    code, out = invoke(*refund, env=env)  # again: nothing changes, Stripe is not called
    assert code == 0, out
    assert "already refunded: nothing changed" in out
    assert len([r for r in fake_stripe.requests if r[:2] == ("POST", "/v1/refunds")]) == 1

    async def webhook_arrives() -> tuple[str, int, int]:
        async with bootstrap(settings) as services:
            refunded = next(e for e in fake_stripe.events if e["type"] == "charge.refunded")
            outcome = await deliver(services, payload(refunded))
            balance = await services.credits.existing_balance("alice")
            return outcome, balance.balance, balance.debt

    assert asyncio.run(webhook_arrives()) == (
        "unchanged: completed, 1100 of 1100 clawed back",
        0,
        100,
    )
    code, out = invoke("reconcile", "--json", env=env)
    assert (code, json.loads(out)["ok"]) == (0, True)


def test_a_refund_that_fails_at_stripe_gives_the_credits_back(
    database_url: str, fake_stripe: FakeStripe
) -> None:
    settings = Settings(**stripe_env(database_url, fake_stripe))

    async def buy_and_spend() -> str:
        async with bootstrap(settings, migrate=True) as services:
            package = await services.purchases.add_package("Plus", 1100, 1000)
            started = await services.purchases.start("alice", package.id)
            intent = fake_stripe.intents[str(started.purchase.stripe_payment_intent_id)]
            assert await deliver(services, paid(fake_stripe, intent)) == "credited"
            await services.credits.use("alice", 100, "chat", "answer")
            return started.purchase.id

    purchase_id = asyncio.run(buy_and_spend())
    env = stripe_env(database_url, fake_stripe)
    refund = ["purchases", "refund", purchase_id, "--reason", "asked", "--operator", "ops"]
    assert invoke(*refund, env=env)[0] == 0
    [made] = fake_stripe.refunds
    failed = next(e for e in fake_stripe.fail_refund(made) if e["type"] == "refund.failed")

    async def bank_returns_it() -> tuple[str, int, int]:
        async with bootstrap(settings) as services:
            outcome = await deliver(services, payload(failed))
            balance = await services.credits.existing_balance("alice")
            return outcome, balance.balance, balance.debt

    assert asyncio.run(bank_returns_it()) == ("gave back 1000, debt paid 100", 1000, 0)
    code, out = invoke("purchases", "show", purchase_id, "--json", env=env)
    shown = json.loads(out)
    assert (code, shown["clawedBack"]) == (0, 0)
    assert [c["credits"] for c in shown["clawbacks"]] == [1000]
    assert [r["credits"] for r in shown["reinstatements"]] == [1000]
    assert (
        shown["stripeChargeId"]
        == fake_stripe.intents[shown["stripePaymentIntentId"]]["latest_charge"]
    )
    code, out = invoke("purchases", "show", purchase_id, env=env)
    assert "given back  1000 credits" in out
    code, out = invoke("reconcile", "--json", env=env)
    assert (code, json.loads(out)["ok"]) == (0, True)
    # Refunding again reaches Stripe again (a key of its own: Stripe would answer the
    # first key with the failed refund for a day) and takes the credits back again.
    code, out = invoke(*refund, "--json", env=env)
    assert code == 0, out
    again = json.loads(out)
    assert len(fake_stripe.refunds) == 2
    assert again["refundId"] != made
    assert again["outcome"] == "clawed back 1000, debt 100"
    keys = [r[2] for r in fake_stripe.requests if r[:2] == ("POST", "/v1/refunds")]
    assert keys[0] == f"refund:{purchase_id}"
    assert len(set(keys)) == 2


def test_sync_settles_a_purchase_whose_webhooks_were_missed(
    database_url: str, fake_stripe: FakeStripe
) -> None:
    settings = Settings(**stripe_env(database_url, fake_stripe))

    async def buy() -> str:
        async with bootstrap(settings, migrate=True) as services:
            package = await services.purchases.add_package("Plus", 1100, 1000)
            started = await services.purchases.start("alice", package.id)
            return started.purchase.id

    purchase_id = asyncio.run(buy())
    intent = next(iter(fake_stripe.intents))
    fake_stripe.pay(intent)  # no webhook ever arrives
    fake_stripe.refund(intent, 500)
    env = stripe_env(database_url, fake_stripe)
    code, out = invoke("purchases", "sync", purchase_id[:8], env=env)
    assert (code, out.strip()) == (0, f"{purchase_id}: credited; clawed back 550, debt 0")
    code, out = invoke("purchases", "sync", purchase_id, "--json", env=env)
    shown = json.loads(out)
    assert (code, shown["outcome"]) == (0, "unchanged: completed, 550 of 1100 clawed back")
    assert (shown["purchase"]["status"], shown["purchase"]["clawedBack"]) == ("completed", 550)
    fake_stripe.fail_with = 503
    code, out = invoke("purchases", "sync", purchase_id, env=env)
    assert code == 1
    assert out.startswith("error: payment_provider_unavailable: "), out
    assert out.count("\n") == 1
