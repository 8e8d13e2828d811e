"""Operator reads on every store: reads that create nothing, rankings, listings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import ManualClock
from mana_credits_adapters.payments.dev import DevGateway, dev_payment
from mana_credits_adapters.settings import Settings
from mana_credits_core import InvalidInput, Principal, TransactionType
from mana_credits_core.errors import (
    GiftNotCancellable,
    GiftNotFound,
    PurchaseNotFound,
    PurchaseNotRefundable,
    UserNotFound,
)
from mana_credits_core.ports import Store
from mana_credits_core.services import Services


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ops(store: Store, settings: Settings, clock: ManualClock) -> Services:
    return build_services(
        store, settings, clock=clock, payments=DevGateway("http://localhost:3061")
    )


async def fund(services: Services, user: str, amount: int) -> None:
    await services.credits.credit(user, amount, TransactionType.GRANT, "funds")


async def test_existing_balance_never_creates_one(ops: Services) -> None:
    with pytest.raises(UserNotFound) as raised:
        await ops.credits.existing_balance("alcie")
    assert raised.value.details == {"userId": "alcie"}
    report = await ops.reconcile.run()
    assert report.users_checked == 0  # no balance row was left behind
    await fund(ops, "alice", 40)
    found = await ops.credits.existing_balance("alice")
    assert (found.user_id, found.balance) == ("alice", 40)


async def test_sync_find_tells_never_subscribed_apart(ops: Services) -> None:
    assert await ops.sync.find("alice") is None
    await ops.sync.gift("alice", "ops")
    found = await ops.sync.find("alice")
    assert found is not None
    assert found.gifted
    assert await ops.sync.find("bob") is None


async def test_top_balances_and_spenders(ops: Services, clock: ManualClock) -> None:
    for user, credits in (("ann", 300), ("bea", 100), ("cid", 300), ("dan", 50)):
        await fund(ops, user, credits)
    await ops.credits.use("bea", 80, "chat", "old answers")
    clock.advance(timedelta(days=10))
    since = clock.now().date()
    await ops.credits.use("ann", 20, "chat", "answer")
    await ops.credits.use("dan", 30, "images", "picture")
    await ops.credits.use("dan", 5, "chat", "answer")
    # Credits held for a gift code are not spending.
    await ops.gifts.create(Principal("cid"), 200)

    top = await ops.credits.top_balances(3)
    assert [(b.user_id, b.balance) for b in top] == [("ann", 280), ("cid", 100), ("bea", 20)]
    assert await ops.credits.top_spenders(limit=10) == [("bea", 80), ("dan", 35), ("ann", 20)]
    assert await ops.credits.top_spenders(since, limit=1) == [("dan", 35)]
    with pytest.raises(InvalidInput):
        await ops.credits.top_balances(0)


async def test_gift_escrow_is_not_usage(ops: Services) -> None:
    await fund(ops, "alice", 100)
    await ops.gifts.create(Principal("alice"), 60)
    await ops.credits.use("alice", 10, "chat", "answer")
    stats = await ops.credits.usage_report(1)
    assert [(s.app_id, s.credits_used, s.operations) for s in stats] == [("chat", 10, 1)]


async def test_all_purchases_filters_and_refund_once(ops: Services, clock: ManualClock) -> None:
    package = await ops.purchases.add_package("Plus", 1100, 1000)
    first = (await ops.purchases.start("alice", package.id)).purchase
    clock.advance(timedelta(seconds=1))
    second = (await ops.purchases.start("bob", package.id)).purchase
    await ops.purchases.handle(dev_payment(first))
    listed = await ops.purchases.all_purchases()
    assert [p.id for p in listed] == [second.id, first.id]
    assert [p.id for p in await ops.purchases.all_purchases(user_id="alice")] == [first.id]
    pending = await ops.purchases.all_purchases(status="pending")
    assert [p.id for p in pending] == [second.id]
    with pytest.raises(InvalidInput):
        await ops.purchases.all_purchases(status="bogus")

    with pytest.raises(PurchaseNotRefundable):
        await ops.purchases.refund(second.id, "asked", "ops")
    with pytest.raises(PurchaseNotFound):
        await ops.purchases.refund("missing", "asked", "ops")
    await ops.credits.use("alice", 100, "chat", "answer")
    done = await ops.purchases.refund(first.id, "asked by mail", "ops")
    assert done.refund is not None
    assert done.refund.amount == 1000
    assert done.purchase.clawed_back == 1100
    assert done.outcome == "clawed back 1000, debt 100"
    balance = await ops.credits.existing_balance("alice")
    assert (balance.balance, balance.debt) == (0, 100)
    entries = await ops.credits.transactions("alice")
    clawbacks = [e for e in entries if e.type == TransactionType.CLAWBACK]
    assert len(clawbacks) == 1
    assert clawbacks[0].metadata == {
        "purchaseId": first.id,
        "operator": "ops",
        "reason": "asked by mail",
        "refundId": done.refund.id,
        "paidEuroCents": 1000,
        "refundedEuroCents": 1000,
        "disputedEuroCents": 0,
        "clawedBack": 1100,
    }
    again = await ops.purchases.refund(first.id, "asked by mail", "ops")
    assert (again.refund, again.outcome) == (None, "already refunded: nothing changed")
    after = await ops.credits.existing_balance("alice")
    assert after == balance
    assert (await ops.reconcile.run()).ok


async def test_gift_lookup_by_code_or_id_and_expire_one(ops: Services, clock: ManualClock) -> None:
    await fund(ops, "alice", 100)
    gift = await ops.gifts.create(Principal("alice"), 30, expiration_days=1)
    assert (await ops.gifts.lookup(gift.id)).code == gift.code
    dashed = f"{gift.code[:4].lower()}-{gift.code[4:]}"
    assert (await ops.gifts.lookup(dashed)).id == gift.id
    with pytest.raises(GiftNotFound):
        await ops.gifts.lookup("nothing-like-it")
    with pytest.raises(GiftNotCancellable):
        await ops.gifts.expire_one(gift.id)  # not overdue yet
    clock.advance(timedelta(days=2))
    expired = await ops.gifts.expire_one(gift.id)
    assert expired.id == gift.id
    assert (await ops.gifts.lookup(gift.id)).status == "expired"
    with pytest.raises(GiftNotCancellable):
        await ops.gifts.expire_one(gift.id)  # once
    assert (await ops.credits.existing_balance("alice")).balance == 100


async def test_reconcile_reports_progress_for_every_user(ops: Services) -> None:
    for n in range(250):
        await fund(ops, f"user-{n:03d}", 1)
    seen: list[int] = []
    report = await ops.reconcile.run(progress=seen.append)
    assert report.ok
    assert (report.users_checked, sum(seen), seen) == (250, 250, [100, 100, 50])
