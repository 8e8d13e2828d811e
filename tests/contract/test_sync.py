"""The Cloud Sync contract on every store: state rules and billing races."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import ManualClock
from mana_credits_adapters.settings import Settings
from mana_credits_core import InsufficientCredits, InvalidInput, TransactionType
from mana_credits_core.errors import SubscriptionNotFound, SyncStateError
from mana_credits_core.ledger import Applied, Debit
from mana_credits_core.ports import Store
from mana_credits_core.services import Services
from mana_credits_core.sync import BillingReport, period_key


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sync(store: Store, settings: Settings, clock: ManualClock) -> Services:
    return build_services(store, settings, clock=clock)


async def fund(services: Services, user: str, amount: int) -> None:
    await services.credits.credit(user, amount, TransactionType.GRANT, "funds")


async def sync_entries(services: Services, user: str) -> int:
    entries = await services.credits.transactions(user, limit=100)
    return sum(1 for e in entries if e.app_id == "sync")


async def test_state_rules(sync: Services) -> None:
    await fund(sync, "alice", 100)
    with pytest.raises(SyncStateError, match="Sync is not active"):
        await sync.sync.deactivate("alice")
    with pytest.raises(SyncStateError, match="Sync is not active"):
        await sync.sync.change_interval("alice", "yearly")
    status = await sync.sync.status("alice")
    assert (status.active, status.interval, status.next_charge_at, status.gifted) == (
        False,
        "monthly",
        None,
        False,
    )
    await sync.sync.activate("alice", "quarterly")
    with pytest.raises(SyncStateError, match="Sync is already active"):
        await sync.sync.activate("alice")
    await sync.sync.deactivate("alice")
    assert not (await sync.sync.status("alice")).active
    with pytest.raises(SubscriptionNotFound):
        await sync.sync.revoke_gift("nobody")
    with pytest.raises(SyncStateError, match="Sync is not gifted"):
        await sync.sync.revoke_gift("alice")
    assert (await sync.credits.balance("alice")).balance == 10


async def test_reactivating_inside_the_paid_period_resumes_without_a_charge(
    sync: Services, clock: ManualClock
) -> None:
    await fund(sync, "alice", 200)
    first = await sync.sync.activate("alice")
    paid_until = first.subscription.next_charge_at
    assert paid_until is not None
    await sync.sync.deactivate("alice")
    # At the same instant (found by the model-based test: it answered "already active").
    again = await sync.sync.activate("alice")
    assert (again.amount_charged, again.subscription.next_charge_at) == (0, paid_until)
    await sync.sync.deactivate("alice")
    clock.advance(timedelta(days=10))
    resumed = await sync.sync.activate("alice", "quarterly")
    assert (resumed.amount_charged, resumed.subscription.next_charge_at) == (0, paid_until)
    assert resumed.subscription.billed_interval == "quarterly"  # from the next charge on
    assert (await sync.credits.balance("alice")).balance == 170
    clock.set(paid_until)
    assert (await sync.sync.charge_due()).charged == 1
    assert (await sync.credits.balance("alice")).balance == 80  # 90 for the quarter
    assert await sync_entries(sync, "alice") == 2


async def test_reactivating_after_the_paid_period_starts_a_new_calendar(
    sync: Services, clock: ManualClock
) -> None:
    await fund(sync, "alice", 100)
    first = await sync.sync.activate("alice")
    await sync.sync.deactivate("alice")
    assert first.subscription.next_charge_at is not None
    clock.set(first.subscription.next_charge_at + timedelta(days=3))
    again = await sync.sync.activate("alice")
    assert again.amount_charged == 30
    assert again.subscription.anchor_at == clock.now()
    assert (await sync.credits.balance("alice")).balance == 40


async def test_insufficient_activation_changes_nothing(sync: Services) -> None:
    await fund(sync, "alice", 29)
    with pytest.raises(InsufficientCredits) as refused:
        await sync.sync.activate("alice")
    assert (refused.value.required, refused.value.available) == (30, 29)
    assert not (await sync.sync.status("alice")).active
    assert (await sync.credits.balance("alice")).balance == 29
    # Not even an inactive subscription is left behind (found by the model-based test).
    with pytest.raises(SubscriptionNotFound):
        await sync.sync.revoke_gift("alice")


async def test_five_concurrent_activations_charge_once(sync: Services) -> None:
    await fund(sync, "alice", 1000)
    results = await asyncio.gather(
        *(sync.sync.activate("alice") for _ in range(5)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, SyncStateError) for r in results if isinstance(r, BaseException))
    assert (await sync.credits.balance("alice")).balance == 970
    assert (await sync.reconcile.run()).ok


async def subscribe(services: Services, users: int, credits: int = 1000) -> None:
    for i in range(users):
        await fund(services, f"user{i}", credits)
        await services.sync.activate(f"user{i}")


async def test_two_overlapping_runs_charge_each_period_once(
    sync: Services, clock: ManualClock
) -> None:
    await subscribe(sync, 40)
    clock.advance(timedelta(days=32))
    first, second = await asyncio.gather(
        sync.sync.charge_due(batch_size=7), sync.sync.charge_due(batch_size=7)
    )
    assert first.charged + second.charged == 40
    assert first.errors + second.errors == 0
    for i in range(40):
        assert await sync_entries(sync, f"user{i}") == 2
    assert (await sync.reconcile.run()).ok


async def test_a_killed_run_resumed_charges_the_rest_once(
    sync: Services, clock: ManualClock
) -> None:
    await subscribe(sync, 30)
    clock.advance(timedelta(days=32))
    seen = 0
    two_batches = asyncio.Event()

    def count(n: int) -> None:
        nonlocal seen
        seen += n
        if seen >= 8:
            two_batches.set()

    run = asyncio.create_task(sync.sync.charge_due(batch_size=4, progress=count))
    await two_batches.wait()
    run.cancel()  # killed mid-run: the batch in flight rolls back
    with contextlib.suppress(asyncio.CancelledError):
        await run
    await sync.sync.charge_due(batch_size=4)
    for i in range(30):
        assert await sync_entries(sync, f"user{i}") == 2
    assert (await sync.sync.charge_due()).total == 0
    assert (await sync.reconcile.run()).ok


async def test_dry_run_counts_and_charges_nothing(sync: Services, clock: ManualClock) -> None:
    await subscribe(sync, 3)
    clock.advance(timedelta(days=32))
    assert await sync.sync.charge_due(dry_run=True) == BillingReport(total=3)
    assert await sync_entries(sync, "user0") == 1


async def test_mixed_run_reports_what_happened(sync: Services, clock: ManualClock) -> None:
    await subscribe(sync, 2)
    await fund(sync, "poor", 30)
    await sync.sync.activate("poor")
    await fund(sync, "gifted", 0 + 1)
    await sync.sync.gift("gifted", "admin")
    clock.advance(timedelta(days=32))
    assert await sync.sync.charge_due() == BillingReport(charged=2, paused=1, errors=0, total=3)


async def test_every_store_bills_by_the_same_calendar_and_keys(
    sync: Services, clock: ManualClock
) -> None:
    from datetime import UTC, datetime

    from mana_credits_core.sync import add_months, period_key

    anchor = datetime(2027, 1, 31, 9, 30, 15, 250000, tzinfo=UTC)
    clock.set(anchor)
    await fund(sync, "alice", 1000)
    await sync.sync.activate("alice")
    await sync.sync.change_interval("alice", "quarterly")
    expected = [add_months(anchor, 1), add_months(anchor, 4), add_months(anchor, 7)]
    assert [e.day for e in expected] == [28, 31, 31]
    for period_start in expected:
        clock.set(period_start)
        assert (await sync.sync.charge_due()).charged == 1
    status = await sync.sync.status("alice")
    assert status.next_charge_at == add_months(anchor, 10)
    entries = await sync.credits.transactions("alice", limit=10)
    keys = {e.idempotency_key for e in entries if e.app_id == "sync"}
    assert keys >= {period_key("alice", start) for start in expected}
    amounts = sorted(-e.amount for e in entries if e.app_id == "sync")
    assert amounts == [30, 90, 90, 90]  # quarterly from the first renewal on
    async with sync.store.unit_of_work() as uow:
        usage = await uow.usage.for_user("alice")
    assert sum(u.credits_used for u in usage if u.app_id == "sync") == 300
    assert (await sync.reconcile.run()).ok


@pytest.mark.parametrize("prefix", ["sync:", "gift:", "gift-return:", "purchase:"])
async def test_a_client_key_in_the_form_of_the_services_own_is_refused(
    sync: Services, prefix: str
) -> None:
    await fund(sync, "eve", 100)
    await sync.sync.activate("eve")
    status = await sync.sync.status("eve")
    assert status.next_charge_at is not None
    key = f"{prefix}eve:{status.next_charge_at.isoformat()}"
    with pytest.raises(InvalidInput, match="idempotencyKey must not start with"):
        await sync.credits.use("eve", 1, "app", "pre-pay the next period", idempotency_key=key)
    with pytest.raises(InvalidInput, match="idempotencyKey must not start with"):
        await sync.credits.refund("eve", 1, "back", idempotency_key=key)
    assert (await sync.credits.balance("eve")).balance == 70  # only the first period


async def test_another_entry_under_a_periods_key_pays_nothing(
    sync: Services, store: Store, clock: ManualClock
) -> None:
    # An entry under the next period's key that is no Cloud Sync charge (as a client
    # could write before such keys were refused): the period is not taken as paid.
    await fund(sync, "eve", 1000)
    await fund(sync, "bob", 1000)
    for user in ("eve", "bob"):
        await sync.sync.activate(user, "yearly")
    status = await sync.sync.status("eve")
    assert status.next_charge_at is not None
    squatter = Debit(
        entry_id="squatter",
        user_id="eve",
        amount=1,
        app_id="app",
        description="not a Cloud Sync charge",
        metadata=None,
        idempotency_key=period_key("eve", status.next_charge_at),
        now=clock.now(),
    )
    async with store.unit_of_work() as uow:
        assert isinstance(await uow.balances.debit(squatter), Applied)
        await uow.commit()
    clock.advance(timedelta(days=366))
    report = await sync.sync.charge_due()
    assert (report.charged, report.paused) == (1, 1)  # bob charged, eve not taken as paid
    assert (await sync.sync.status("eve")).active is False
    assert (await sync.sync.status("bob")).active is True
    assert (await sync.reconcile.run()).ok


async def test_resuming_without_an_interval_keeps_the_plan(
    sync: Services, clock: ManualClock
) -> None:
    await fund(sync, "zoe", 1000)
    first = await sync.sync.activate("zoe", "yearly")
    paid_until = first.subscription.next_charge_at
    await sync.sync.deactivate("zoe")
    clock.advance(timedelta(days=40))
    resumed = await sync.sync.activate("zoe")  # POST /sync/activate without a body
    assert (resumed.amount_charged, resumed.subscription.next_charge_at) == (0, paid_until)
    assert resumed.subscription.billed_interval == "yearly"  # was monthly from here on
    await sync.sync.change_interval("zoe", "quarterly")  # from the next charge
    await sync.sync.deactivate("zoe")
    again = await sync.sync.activate("zoe")
    assert again.subscription.billed_interval == "quarterly"  # the change asked for stays
