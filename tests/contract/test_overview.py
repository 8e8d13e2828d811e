"""The operator overview on every store: exact figures for a seeded history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import ManualClock
from mana_credits_adapters.payments.dev import DevGateway, dev_payment
from mana_credits_adapters.settings import Settings
from mana_credits_core import InvalidInput, Principal
from mana_credits_core.ports import Expiring, Store
from mana_credits_core.services import Services

from .test_expiry_sweep import set_balance

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
WINDOW_START = datetime(2026, 2, 14, tzinfo=UTC)  # 30 days up to NOW, today included


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture
async def ops(store: Store, settings: Settings, clock: ManualClock) -> Services:
    return build_services(
        store, settings, clock=clock, payments=DevGateway("http://localhost:3061")
    )


async def grant(s: Services, user: str, credits: int, expires_at: datetime | None = None) -> None:
    await s.credits.grant(user, credits, "seed", "ops", expires_at=expires_at)


async def seed(s: Services, clock: ManualClock) -> None:
    """A history from 1 January to NOW (15 March 2026, noon UTC):

    alice buys 1100 credits (1 Jan, before the window), uses 100 before the window and
    80 in it, gives two gift codes (60 left active, 25 redeemed by bob), then her
    purchase is refunded: 835 clawed back, 265 owed. bob buys 1100 credits at the very
    start of the window, uses 35 and holds 40 in a pending reservation. cid's purchase
    stays pending. carl pays for Cloud Sync, dan's pauses, eve's is gifted. fay has 70
    credits expiring within 30 days and 15 after.
    """
    package = await s.purchases.add_package("Plus", 1100, 1000)
    first = (await s.purchases.start("alice", package.id)).purchase
    await s.purchases.handle(dev_payment(first))

    await grant(s, "carl", 100)
    await s.sync.activate("carl")  # 30 credits on 1 Jan
    await grant(s, "dan", 40)
    await s.sync.activate("dan")
    await s.sync.gift("eve", "ops")
    clock.set(datetime(2026, 2, 1, tzinfo=UTC))
    await s.sync.charge_due()  # carl pays 30 more; dan's 10 fall short: paused

    clock.set(datetime(2026, 2, 10, 9, tzinfo=UTC))
    await s.credits.use("alice", 100, "chat", "before the window")
    clock.set(WINDOW_START - timedelta(hours=1))
    second = (await s.purchases.start("bob", package.id)).purchase
    clock.set(WINDOW_START)
    await s.purchases.handle(dev_payment(second))  # completed on the window's first instant
    await s.credits.use("bob", 20, "chat", "first day of the window")

    clock.set(datetime(2026, 3, 10, tzinfo=UTC))
    await s.purchases.start("cid", package.id)  # never paid
    clock.set(datetime(2026, 3, 14, 23, 59, tzinfo=UTC))
    await s.credits.use("alice", 30, "images", "yesterday")

    clock.set(NOW)
    await s.credits.use("alice", 50, "chat", "today")
    await s.credits.use("bob", 5, "chat", "today")
    await s.reservations.reserve("bob", 40, "long answer", app_id="chat")  # stays pending
    held = await s.reservations.reserve("bob", 10, "short answer", app_id="chat")
    await s.reservations.commit(held.reservation.id)
    await s.gifts.create(Principal("alice"), 60)
    redeemed = await s.gifts.create(Principal("alice"), 25)
    await s.gifts.redeem(Principal("bob"), redeemed.code)
    await s.purchases.refund(first.id, "asked by mail", "ops")
    await grant(s, "fay", 70, NOW + timedelta(days=10))
    await grant(s, "fay", 15, NOW + timedelta(days=60))


async def test_overview_figures(ops: Services, clock: ManualClock) -> None:
    await seed(ops, clock)
    assert (await ops.credits.existing_balance("alice")).debt == 265  # the seed is as told

    found = await ops.overview.overview(30)

    assert (found.as_of, found.days, found.since) == (NOW, 30, date(2026, 2, 14))
    # alice 0, bob 1100 - 35 - 40 - 10 + 25, dan 10, carl 40, fay 85
    assert (found.balances, found.held, found.outstanding) == (1185, 40, 1225)
    # cid (a purchase never paid) and eve (gifted Sync) have no balance
    assert (found.debt, found.users) == (265, 5)
    assert (found.purchases, found.credits_sold, found.euro_cents_sold) == (1, 1100, 1000)
    assert found.credits_clawed_back == 0  # bob's purchase; alice's refunded one is older
    assert [(s.day, s.app_id, s.credits_used, s.operations) for s in found.usage] == [
        (date(2026, 2, 14), "chat", 20, 1),
        (date(2026, 3, 14), "images", 30, 1),
        (date(2026, 3, 15), "chat", 65, 3),
    ]
    assert found.credits_used == 115
    assert (found.sync_active, found.sync_paused, found.sync_gifted) == (1, 1, 1)
    assert (found.gifts_active, found.gift_credits) == (1, 60)
    assert found.expiring == Expiring(credits=70, users=1, lots=1)
    assert found.reconcile is None  # no check run in this process yet


async def test_overview_window_and_reconcile(ops: Services, clock: ManualClock) -> None:
    await seed(ops, clock)
    # One day: only today's usage; bob's purchase is out of it.
    today = await ops.overview.overview(1)
    assert today.since == date(2026, 3, 15)
    assert (today.purchases, today.credits_sold, today.euro_cents_sold) == (0, 0, 0)
    assert today.credits_used == 65
    # Seventy-five days reach alice's purchase and usage of January and February.
    wide = await ops.overview.overview(75)
    assert (wide.purchases, wide.credits_sold, wide.euro_cents_sold) == (2, 2200, 2000)
    assert wide.credits_clawed_back == 1100  # alice's refund: 835 taken, 265 owed as debt
    # carl's and dan's first Sync charges, carl's second, alice's 100 before the window
    assert wide.credits_used == 115 + 100 + 30 * 3

    status = await ops.reconcile_watch.check()
    assert (status.ok, status.drifts, status.checked_at) == (True, 0, NOW)
    assert (await ops.overview.overview()).reconcile == status

    await set_balance(ops.store, "carl", 41)
    clock.advance(timedelta(hours=1))
    drifted = await ops.reconcile_watch.check()
    assert not drifted.ok
    assert drifted.drifts >= 1
    assert drifted.checked_at == NOW + timedelta(hours=1)
    assert (await ops.overview.overview()).reconcile == drifted


async def test_overview_of_an_empty_store(ops: Services) -> None:
    found = await ops.overview.overview()
    assert (found.balances, found.held, found.debt, found.users) == (0, 0, 0, 0)
    assert (found.purchases, found.credits_sold, found.credits_used) == (0, 0, 0)
    assert (found.sync_active, found.sync_paused, found.gifts_active) == (0, 0, 0)
    assert found.usage == ()
    assert found.expiring == Expiring()


@pytest.mark.parametrize("days", [0, -1, 3661, True])
async def test_overview_refuses_a_bad_window(ops: Services, days: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        await ops.overview.overview(days)
    assert raised.value.field == "days"


async def test_reconcile_watch_remembers_the_last_check(ops: Services, clock: ManualClock) -> None:
    watch = ops.reconcile_watch
    assert watch.last is None  # nothing checked yet in this process
    await grant(ops, "alice", 50)
    clock.set(NOW)
    first = await watch.check()
    assert (first.checked_at, first.ok, first.drifts, first.users_checked) == (NOW, True, 0, 1)
    assert watch.last == first

    await set_balance(ops.store, "alice", 45)  # behind the service's back
    clock.advance(timedelta(minutes=5))
    second = await watch.check()
    assert (second.checked_at, second.ok) == (NOW + timedelta(minutes=5), False)
    # balance = ledger - held, and lots remaining = balance + held
    assert second.drifts == 2
    assert watch.last == second
