"""Changing the Cloud Sync interval on every store: nothing is charged now, and the
subscription tells what the next charge will take (the new interval's price)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import ManualClock
from mana_credits_adapters.settings import Settings
from mana_credits_core import TransactionType
from mana_credits_core.ports import Store
from mana_credits_core.sync import BillingInterval

START = datetime(2027, 1, 31, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "to", "next_charge"),
    [
        ("monthly", "yearly", 360),
        ("monthly", "quarterly", 90),
        ("yearly", "monthly", 30),
        ("quarterly", "quarterly", 90),  # back to the current one: its own price
    ],
)
async def test_the_next_charge_takes_the_new_price_and_nothing_is_charged_now(
    store: Store, settings: Settings, start: str, to: str, next_charge: int
) -> None:
    clock = ManualClock(START)
    services = build_services(store, settings, clock=clock)
    try:
        await services.credits.credit("alice", 1000, TransactionType.GRANT, "funds")
        activated = await services.sync.activate("alice", start)
        before = await services.credits.balance_summary("alice")
        changed = await services.sync.change_interval("alice", to)
        assert changed.billed_interval == BillingInterval(to)
        assert await services.sync.period_price(changed.billed_interval) == next_charge
        assert changed.next_charge_at == activated.subscription.next_charge_at
        after = await services.credits.balance_summary("alice")
        assert after == before  # no charge, no entry
        assert changed.next_charge_at is not None
        clock.set(changed.next_charge_at)
        assert (await services.sync.charge_due()).charged == 1
        charged = (await services.credits.transactions("alice", limit=1))[0]
        assert -charged.amount == next_charge
    finally:
        await services.close()
