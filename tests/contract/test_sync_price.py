"""Cloud Sync's price comes from the price list's `cloud_sync` (credits a month) on
every store: a change applies from the next charge on, activation and the billing run
alike; the entry stays whole months in whole credits and cannot be retired or debited
by operation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import ManualClock
from mana_credits_adapters.settings import Settings
from mana_credits_core import TransactionType
from mana_credits_core.errors import InsufficientCredits, InvalidInput
from mana_credits_core.ports import Store
from mana_credits_core.sync import BillingInterval

START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


async def test_a_new_monthly_price_is_charged_from_the_next_period_on(
    store: Store, settings: Settings
) -> None:
    clock = ManualClock(START)
    services = build_services(store, settings, clock=clock)
    try:
        await services.credits.credit("alice", 1000, TransactionType.GRANT, "funds")
        await services.credits.credit("bob", 1000, TransactionType.GRANT, "funds")
        first = await services.sync.activate("alice", "monthly")
        assert first.amount_charged == 30  # the seeded price
        await services.prices.set("cloud_sync", "40", operator="ops", reason="new price")
        assert await services.sync.period_price(BillingInterval.QUARTERLY) == 120
        quarterly = await services.sync.activate("bob", "quarterly")
        assert quarterly.amount_charged == 120
        assert (await services.credits.balance("bob")).balance == 880
        assert first.subscription.next_charge_at is not None
        clock.set(first.subscription.next_charge_at)
        assert (await services.sync.charge_due()).charged == 1
        charged = (await services.credits.transactions("alice", limit=1))[0]
        assert charged.amount == -40
        assert (await services.credits.balance("alice")).balance == 1000 - 30 - 40
    finally:
        await services.close()


async def test_a_refused_activation_names_the_price_of_the_day(
    store: Store, settings: Settings
) -> None:
    services = build_services(store, settings, clock=ManualClock(START))
    try:
        await services.credits.credit("carol", 50, TransactionType.GRANT, "funds")
        await services.prices.set("cloud_sync", "60", operator="ops")
        with pytest.raises(InsufficientCredits) as refused:
            await services.sync.activate("carol")
        assert refused.value.required == 60
        assert (await services.credits.balance("carol")).balance == 50
    finally:
        await services.close()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price": "30.5"}, "price"),  # periods are charged in whole credits
        ({"price": "30", "unit": "day"}, "unit"),
        ({"price": "30", "unit_size": 2}, "unit"),
    ],
)
async def test_cloud_sync_stays_whole_credits_a_month(
    store: Store, settings: Settings, change: dict[str, object], field: str
) -> None:
    services = build_services(store, settings, clock=ManualClock(START))
    try:
        rest = {k: x for k, x in change.items() if k != "price"}  # the case is shared
        price = change["price"]
        assert isinstance(price, str)
        with pytest.raises(InvalidInput) as refused:
            await services.prices.set("cloud_sync", price, operator="ops", **rest)  # type: ignore[arg-type]
        assert refused.value.field == field
        assert (await services.prices.get("cloud_sync")).price_milli == 30_000
        assert await services.prices.history("cloud_sync") == []
    finally:
        await services.close()


async def test_cloud_sync_is_neither_retired_nor_debited_by_operation(
    store: Store, settings: Settings
) -> None:
    services = build_services(store, settings, clock=ManualClock(START))
    try:
        await services.credits.credit("dave", 100, TransactionType.GRANT, "funds")
        with pytest.raises(InvalidInput, match="cannot be retired"):
            await services.prices.retire("cloud_sync", operator="ops")
        with pytest.raises(InvalidInput, match="billed by the Cloud Sync subscription"):
            await services.credits.use_operation("dave", "cloud_sync")
        with pytest.raises(InvalidInput, match="billed by the Cloud Sync subscription"):
            await services.reservations.reserve_operation("dave", "cloud_sync")
        assert (await services.credits.balance("dave")).balance == 100
        assert (await services.prices.get("cloud_sync")).active
    finally:
        await services.close()
