"""The purchase contract on every store, with the dev gateway (no network)."""

from __future__ import annotations

import asyncio

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.payments.dev import DevGateway
from mana_credits_adapters.settings import Settings
from mana_credits_core import InvalidInput, TransactionType
from mana_credits_core.errors import PackageNotFound, PurchaseNotFound
from mana_credits_core.ports import Store
from mana_credits_core.purchases import (
    CURRENCY,
    DEFAULT_CATALOGUE,
    Acknowledged,
    PaymentDisputed,
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    PurchaseStatus,
)
from mana_credits_core.services import Services


@pytest.fixture
def shop(store: Store, settings: Settings) -> Services:
    return build_services(
        store, settings, clock=TickingClock(), payments=DevGateway("http://localhost:3061")
    )


def paid(purchase_id: str, intent: str, amount: int, event_id: str = "evt") -> PaymentSucceeded:
    return PaymentSucceeded(event_id, purchase_id, intent, amount, CURRENCY)


async def test_default_catalogue_is_created_once(shop: Services) -> None:
    assert await shop.purchases.ensure_default_catalogue() == len(DEFAULT_CATALOGUE)
    assert await shop.purchases.ensure_default_catalogue() == 0
    listed = await shop.purchases.packages()
    assert [p.name for p in listed] == [name for name, *_ in DEFAULT_CATALOGUE]


async def test_package_rules(shop: Services) -> None:
    for bad in ({"credits": 0}, {"price_euro_cents": 0}, {"name": ""}):
        args = {"name": "X", "credits": 10, "price_euro_cents": 10} | bad
        with pytest.raises(InvalidInput):
            await shop.purchases.add_package(**args)  # type: ignore[arg-type]
    with pytest.raises(PackageNotFound):
        await shop.purchases.update_package("missing", price_euro_cents=5)


async def test_purchase_paid_once_then_refunded_once(shop: Services) -> None:
    package = await shop.purchases.add_package("Plus", 1100, 1000)
    started = await shop.purchases.start("alice", package.id, email="a@example.com")
    purchase = started.purchase
    assert started.client_secret is not None
    assert purchase.status == PurchaseStatus.PENDING
    intent = purchase.stripe_payment_intent_id
    assert intent is not None
    assert await shop.purchases.handle(paid(purchase.id, intent, 1000, "e1")) == "credited"
    assert await shop.purchases.handle(paid(purchase.id, intent, 1000, "e1")) == "duplicate event"
    assert await shop.purchases.handle(paid(purchase.id, intent, 1000, "e2")) == (
        "acknowledged: already completed"
    )
    assert await shop.purchases.handle(PaymentFailed("e3", purchase.id, intent)) == (
        "acknowledged: purchase not pending"
    )
    assert (await shop.credits.balance("alice")).balance == 1100
    assert (await shop.purchases.purchase("alice", purchase.id)).status == "completed"
    with pytest.raises(PurchaseNotFound):
        await shop.purchases.purchase("bob", purchase.id)

    refund = PaymentRefunded("e4", intent, refunded=1000, amount=1000)
    assert await shop.purchases.handle(refund) == "clawed back 1100, debt 0"
    again = PaymentDisputed("e5", intent)
    assert await shop.purchases.handle(again) == "acknowledged: already clawed back"
    assert (await shop.credits.balance("alice")).balance == 0
    assert (await shop.reconcile.run()).ok


async def test_events_for_unknown_purchases_are_ignored(shop: Services) -> None:
    assert (await shop.purchases.handle(paid("nope", "pi_x", 100))).startswith("ignored")
    assert (await shop.purchases.handle(PaymentDisputed("d", "pi_x"))).startswith("ignored")
    assert await shop.purchases.handle(Acknowledged("a", "customer.created")) == (
        "acknowledged: customer.created"
    )


async def test_concurrent_events_for_one_payment_credit_once(shop: Services) -> None:
    package = await shop.purchases.add_package("Plus", 1100, 1000)
    purchase = (await shop.purchases.start("alice", package.id)).purchase
    intent = purchase.stripe_payment_intent_id
    assert intent is not None
    events = [paid(purchase.id, intent, 1000, f"e{i % 5}") for i in range(20)]
    await asyncio.gather(*(shop.purchases.handle(e) for e in events))
    assert (await shop.credits.balance("alice")).balance == 1100
    entries = await shop.credits.transactions("alice")
    assert [e.type for e in entries] == [TransactionType.PURCHASE]
    assert (await shop.reconcile.run()).ok


async def test_debt_is_collected_by_the_next_top_up(shop: Services) -> None:
    package = await shop.purchases.add_package("Plus", 1100, 1000)
    first = (await shop.purchases.start("alice", package.id)).purchase
    assert first.stripe_payment_intent_id is not None
    await shop.purchases.handle(paid(first.id, first.stripe_payment_intent_id, 1000, "a"))
    await shop.credits.use("alice", 1000, "chat", "spent")
    outcome = await shop.purchases.handle(PaymentDisputed("b", first.stripe_payment_intent_id))
    assert outcome == "clawed back 100, debt 1000"
    second = (await shop.purchases.start("alice", package.id)).purchase
    assert second.stripe_payment_intent_id is not None
    await shop.purchases.handle(paid(second.id, second.stripe_payment_intent_id, 1000, "c"))
    balance = await shop.credits.balance("alice")
    assert (balance.balance, balance.debt) == (100, 0)
    assert (await shop.reconcile.run()).ok
