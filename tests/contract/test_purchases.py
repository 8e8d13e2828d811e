"""The purchase contract on every store: Stripe's records in process (`ModelGateway`,
no network) and the dev gateway."""

from __future__ import annotations

import asyncio

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.payments.dev import DevGateway, DevPayments, dev_payment
from mana_credits_adapters.settings import Settings
from mana_credits_core import InvalidInput, TransactionType
from mana_credits_core.errors import PackageNotFound, PaymentProviderUnavailable, PurchaseNotFound
from mana_credits_core.payment_state import PaymentState
from mana_credits_core.ports import Store
from mana_credits_core.purchases import (
    DEFAULT_CATALOGUE,
    Acknowledged,
    PaymentChanged,
    PaymentRef,
    Purchase,
    PurchaseStatus,
)
from mana_credits_core.services import Services

from ..fakes.model_gateway import ModelGateway
from ..fakes.payment_stories import resent


@pytest.fixture
def gateway() -> ModelGateway:
    return ModelGateway()


@pytest.fixture
def shop(store: Store, settings: Settings, gateway: ModelGateway) -> Services:
    return build_services(store, settings, clock=TickingClock(), payments=gateway)


@pytest.fixture
def dev_shop(store: Store, settings: Settings) -> Services:
    return build_services(
        store, settings, clock=TickingClock(), payments=DevGateway("http://localhost:3061")
    )


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


async def buy(shop: Services, user: str = "alice") -> tuple[Purchase, str]:
    package = await shop.purchases.add_package("Plus", 1100, 1000)
    started = await shop.purchases.start(user, package.id, email=f"{user}@example.com")
    intent = started.purchase.stripe_payment_intent_id
    assert intent is not None
    return started.purchase, intent


async def test_purchase_paid_once_then_refunded_once(shop: Services, gateway: ModelGateway) -> None:
    purchase, intent = await buy(shop)
    assert purchase.status == PurchaseStatus.PENDING
    declined = gateway.model.fail(intent)[0]
    charged, succeeded = gateway.model.pay(intent)
    handle = shop.purchases.handle
    assert await handle(gateway.event(succeeded)) == "credited"
    assert await handle(gateway.event(succeeded)) == "duplicate event"
    assert await handle(gateway.event(charged)) == "unchanged: completed, 0 of 1100 clawed back"
    # The decline came before the success: read now, it changes nothing.
    assert await handle(gateway.event(declined)) == "unchanged: completed, 0 of 1100 clawed back"
    assert (await shop.credits.balance("alice")).balance == 1100
    assert (await shop.purchases.purchase("alice", purchase.id)).status == "completed"
    with pytest.raises(PurchaseNotFound):
        await shop.purchases.purchase("bob", purchase.id)

    refunded = gateway.model.refund(intent)
    assert await handle(gateway.event(refunded[-1])) == "clawed back 1100, debt 0"
    assert await handle(gateway.event(refunded[0])) == (
        "unchanged: completed, 1100 of 1100 clawed back"
    )
    assert (await shop.credits.balance("alice")).balance == 0
    done = await shop.purchases.get(purchase.id)
    assert (done.clawed_back, done.clawback_version) == (1100, 1)
    assert done.stripe_charge_id == charged["data"]["object"]["id"]
    assert (await shop.reconcile.run()).ok


async def test_events_for_unknown_payments_are_ignored(
    shop: Services, gateway: ModelGateway
) -> None:
    intent = gateway.model.create_intent(
        {"amount": 1000, "currency": "eur", "customer": (await _customer(gateway)), "metadata": {}}
    )
    strangers = gateway.model.pay(intent["id"]) + gateway.model.dispute(intent["id"])
    for event in strangers:
        assert await shop.purchases.handle(gateway.event(event)) == "ignored: no such purchase"
    nowhere = PaymentChanged("e", "charge.dispute.created", charge_id="ch_nowhere")
    assert await shop.purchases.handle(nowhere) == "ignored: no such purchase"
    assert await shop.purchases.handle(Acknowledged("a", "customer.created")) == (
        "acknowledged: customer.created"
    )


async def _customer(gateway: ModelGateway) -> str:
    return await gateway.ensure_customer("stranger", None)


async def test_a_payment_of_another_amount_or_purchase_is_not_credited(
    shop: Services, gateway: ModelGateway
) -> None:
    purchase, intent = await buy(shop)
    gateway.model.intents[intent]["amount"] = 1
    gateway.model.pay(intent)
    hint = PaymentChanged("e1", "payment_intent.succeeded", purchase.id, intent)
    assert await shop.purchases.handle(hint) == (
        "ignored: amount or currency does not match the purchase"
    )
    other, other_intent = await buy(shop, "bob")
    gateway.model.intents[other_intent]["metadata"]["purchaseId"] = purchase.id
    gateway.model.pay(other_intent)
    hint = PaymentChanged("e2", "payment_intent.succeeded", other.id, other_intent)
    assert await shop.purchases.handle(hint) == "ignored: the payment belongs to another purchase"
    assert (await shop.credits.balance("alice")).balance == 0
    assert (await shop.purchases.get(other.id)).status == "pending"


async def test_concurrent_events_for_one_payment_credit_once(
    shop: Services, gateway: ModelGateway
) -> None:
    _purchase, intent = await buy(shop)
    charged, succeeded = gateway.model.pay(intent)
    events = [gateway.event(resent(succeeded if i % 2 else charged, i % 5)) for i in range(20)]
    await asyncio.gather(*(shop.purchases.handle(e) for e in events))
    assert (await shop.credits.balance("alice")).balance == 1100
    entries = await shop.credits.transactions("alice")
    assert [e.type for e in entries] == [TransactionType.PURCHASE]
    assert (await shop.reconcile.run()).ok


async def test_concurrent_refund_and_dispute_events_settle_once(
    shop: Services, gateway: ModelGateway
) -> None:
    _purchase, intent = await buy(shop)
    events = gateway.model.pay(intent)
    events += gateway.model.refund(intent, 300) + gateway.model.dispute(intent, 700)
    events += gateway.model.close_dispute(
        gateway.model.events[-2]["data"]["object"]["id"], won=True
    )
    hints = [gateway.event(resent(e, n)) for n in range(3) for e in events]
    await asyncio.gather(*(shop.purchases.handle(h) for h in hints))
    balance = await shop.credits.balance("alice")
    assert (balance.balance, balance.debt) == (1100 - 330, 0)
    assert (await shop.reconcile.run()).ok


async def test_debt_is_collected_by_the_next_top_up(shop: Services, gateway: ModelGateway) -> None:
    _first, intent = await buy(shop)
    for event in gateway.model.pay(intent):
        await shop.purchases.handle(gateway.event(event))
    await shop.credits.use("alice", 1000, "chat", "spent")
    [opened, _withdrawn] = gateway.model.dispute(intent)
    assert await shop.purchases.handle(gateway.event(opened)) == "clawed back 100, debt 1000"
    _second, again = await buy(shop)
    for event in gateway.model.pay(again):
        await shop.purchases.handle(gateway.event(event))
    balance = await shop.credits.balance("alice")
    assert (balance.balance, balance.debt) == (100, 0)
    assert (await shop.reconcile.run()).ok


async def test_a_won_dispute_pays_the_debt_first_then_gives_back_the_rest(
    shop: Services, gateway: ModelGateway
) -> None:
    purchase, intent = await buy(shop)
    for event in gateway.model.pay(intent):
        await shop.purchases.handle(gateway.event(event))
    await shop.credits.use("alice", 1000, "chat", "spent")
    [opened, _withdrawn] = gateway.model.dispute(intent)
    assert await shop.purchases.handle(gateway.event(opened)) == "clawed back 100, debt 1000"
    won = gateway.model.close_dispute(opened["data"]["object"]["id"], won=True)
    assert await shop.purchases.handle(gateway.event(won[-1])) == "gave back 100, debt paid 1000"
    balance = await shop.credits.balance("alice")
    assert (balance.balance, balance.debt) == (100, 0)
    entries = await shop.credits.transactions("alice")
    given = [e for e in entries if e.type == TransactionType.REINSTATEMENT]
    assert [(e.amount, e.app_id) for e in given] == [(100, "payments")]
    assert given[0].metadata is not None
    assert given[0].metadata["purchaseId"] == purchase.id
    assert (await shop.purchases.get(purchase.id)).clawed_back == 0
    assert (await shop.reconcile.run()).ok


async def test_a_refund_before_the_success_event_still_takes_the_credits_back(
    shop: Services, gateway: ModelGateway
) -> None:
    purchase, intent = await buy(shop)
    _charged, succeeded = gateway.model.pay(intent)
    refunded = gateway.model.refund(intent)[-1]
    assert await shop.purchases.handle(gateway.event(refunded)) == (
        "credited; clawed back 1100, debt 0"
    )
    assert await shop.purchases.handle(gateway.event(succeeded)) == (
        "unchanged: completed, 1100 of 1100 clawed back"
    )
    assert (await shop.credits.balance("alice")).balance == 0
    assert (await shop.purchases.get(purchase.id)).status == "completed"
    assert (await shop.reconcile.run()).ok


async def test_operator_reconcile_reads_a_payment_whose_events_were_lost(
    shop: Services, gateway: ModelGateway
) -> None:
    purchase, intent = await buy(shop)
    gateway.model.pay(intent)
    gateway.model.refund(intent, 500)
    assert await shop.purchases.reconcile(purchase.id) == "credited; clawed back 550, debt 0"
    assert await shop.purchases.reconcile(purchase.id) == (
        "unchanged: completed, 550 of 1100 clawed back"
    )
    with pytest.raises(PurchaseNotFound):
        await shop.purchases.reconcile("no-such-purchase")


async def test_the_dev_gateway_pays_and_refunds_through_the_same_path(dev_shop: Services) -> None:
    purchase, _intent = await buy(dev_shop)
    assert await dev_shop.purchases.handle(dev_payment(purchase)) == "credited"
    paid = await dev_shop.purchases.get(purchase.id)
    assert await dev_shop.purchases.handle(dev_payment(paid)) == "duplicate event"
    refund = await dev_shop.purchases.refund(purchase.id, "asked", "ops")
    assert refund.outcome == "clawed back 1100, debt 0"
    assert refund.refund is not None
    assert refund.refund.amount == 1000
    again = await dev_shop.purchases.refund(purchase.id, "asked", "ops")
    assert again.outcome == "already refunded: nothing changed"
    assert (await dev_shop.credits.balance("alice")).balance == 0
    assert (await dev_shop.reconcile.run()).ok


async def test_a_provider_that_forgot_a_payment_leaves_the_purchase_as_it_stands(
    dev_shop: Services, store: Store, settings: Settings
) -> None:
    # Another process's dev gateway (a CLI beside the server) knows none of its payments.
    forgetful = DevGateway("http://localhost:3061", payments=DevPayments())
    elsewhere = build_services(store, settings, clock=TickingClock(), payments=forgetful)
    waiting, _intent = await buy(dev_shop)
    assert await elsewhere.purchases.reconcile(waiting.id) == (
        "unchanged: pending, no payment at the provider yet"
    )
    paid, _intent = await buy(dev_shop)
    assert await dev_shop.purchases.handle(dev_payment(paid)) == "credited"
    await dev_shop.purchases.refund(paid.id, "asked", "ops")
    assert await elsewhere.purchases.reconcile(paid.id) == (
        "unchanged: completed, 1100 of 1100 clawed back"
        " (the payment provider has no record of its payment)"
    )
    assert (await dev_shop.purchases.get(paid.id)).clawed_back == 1100
    assert (await dev_shop.reconcile.run()).ok


class SlowFirstRead(ModelGateway):
    """Stripe answering the first read late: its answer is what Stripe said then."""

    def __init__(self) -> None:
        super().__init__()
        self.slow = False
        self.read = asyncio.Event()
        self.release = asyncio.Event()

    async def payment_state(self, ref: PaymentRef) -> PaymentState | None:
        state = await super().payment_state(ref)
        if self.slow:
            self.slow = False
            self.read.set()
            await self.release.wait()
        return state


class DownAfterFirstRead(SlowFirstRead):
    """As `SlowFirstRead`, and Stripe unreachable for the read after that first one."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next = False

    async def payment_state(self, ref: PaymentRef) -> PaymentState | None:
        if self.fail_next:
            self.fail_next = False
            raise PaymentProviderUnavailable()
        armed = self.slow
        state = await super().payment_state(ref)
        self.fail_next = armed
        return state


async def test_a_stale_read_committed_last_is_read_again(store: Store, settings: Settings) -> None:
    """A `charge.refunded` read before the refund failed, committed after the
    `refund.failed` was settled: the one who changed the purchase reads again."""
    gateway = SlowFirstRead()
    shop = build_services(store, settings, clock=TickingClock(), payments=gateway)
    purchase, intent = await buy(shop)
    for event in gateway.model.pay(intent):
        await shop.purchases.handle(gateway.event(event))
    refunded = gateway.model.refund(intent)[-1]
    gateway.slow = True
    late = asyncio.ensure_future(shop.purchases.handle(gateway.event(refunded)))
    await gateway.read.wait()  # it has read "refunded", and waits
    refund_id = gateway.model.events[-2]["data"]["object"]["id"]
    failed = gateway.model.fail_refund(refund_id)[-1]
    assert await shop.purchases.handle(gateway.event(failed)) == (
        "unchanged: completed, 0 of 1100 clawed back"
    )
    gateway.release.set()
    assert await late == "clawed back 1100, debt 0; gave back 1100, debt paid 0"
    assert (await shop.purchases.get(purchase.id)).clawed_back == 0
    assert (await shop.credits.balance("alice")).balance == 1100
    assert (await shop.reconcile.run()).ok


async def test_a_stale_read_whose_check_fails_leaves_its_event_to_be_delivered_again(
    store: Store, settings: Settings
) -> None:
    """As above, but Stripe is unreachable for the read after the stale commit: the
    webhook answers an error, its event is not recorded, and Stripe's redelivery of it
    settles the purchase from the state then (the refund failed: nothing clawed back)."""
    gateway = DownAfterFirstRead()
    shop = build_services(store, settings, clock=TickingClock(), payments=gateway)
    purchase, intent = await buy(shop)
    for event in gateway.model.pay(intent):
        await shop.purchases.handle(gateway.event(event))
    refunded = gateway.model.refund(intent)[-1]
    gateway.slow = True
    late = asyncio.ensure_future(shop.purchases.handle(gateway.event(refunded)))
    await gateway.read.wait()
    refund_id = gateway.model.events[-2]["data"]["object"]["id"]
    failed = gateway.model.fail_refund(refund_id)[-1]
    await shop.purchases.handle(gateway.event(failed))
    gateway.release.set()
    with pytest.raises(PaymentProviderUnavailable):
        await late  # the stale claw-back committed, its check could not read Stripe
    assert (await shop.purchases.get(purchase.id)).clawed_back == 1100
    # Stripe delivers the event again (a 503 tells it to): not a duplicate any more.
    assert await shop.purchases.handle(gateway.event(refunded)) == "gave back 1100, debt paid 0"
    assert (await shop.purchases.get(purchase.id)).clawed_back == 0
    assert (await shop.credits.balance("alice")).balance == 1100
    assert (await shop.reconcile.run()).ok
