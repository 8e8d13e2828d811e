"""Months of Cloud Sync billing driven by a manual clock, on the in-memory store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import ManualClock
from mana_credits_adapters.memory import MemoryStore
from mana_credits_adapters.settings import Settings
from mana_credits_core import InsufficientCredits, TransactionType
from mana_credits_core.errors import SyncStateError
from mana_credits_core.services import Services
from mana_credits_core.sync import BillingInterval, add_months


class RecordingNotifier:
    def __init__(self, failing: bool = False) -> None:
        self.paused: list[tuple[str, str, int]] = []
        self.failing = failing

    async def sync_paused(self, user_id: str, *, interval: str, required: int) -> None:
        if self.failing:
            raise ConnectionError("notification service down")
        self.paused.append((user_id, interval, required))

    async def credits_expiring(self, user_id: str, *, credits: int, expires_at: datetime) -> None:
        return None

    async def low_balance(self, user_id: str, *, balance: int, threshold: int) -> None:
        return None

    async def close(self) -> None:
        return None


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("anchor", "months", "expected"),
    [
        ("2027-01-31T10:00", 1, "2027-02-28T10:00"),
        ("2027-01-31T10:00", 2, "2027-03-31T10:00"),
        ("2028-01-31T10:00", 1, "2028-02-29T10:00"),
        ("2027-11-30T00:00", 3, "2028-02-29T00:00"),
        ("2028-02-29T12:00", 12, "2029-02-28T12:00"),
        ("2027-12-15T08:30", 1, "2028-01-15T08:30"),
        ("2027-05-31T00:00", 13, "2028-06-30T00:00"),
    ],
)
def test_calendar_months(anchor: str, months: int, expected: str) -> None:
    assert add_months(at(anchor), months) == at(expected)


def test_prices() -> None:
    assert [i.price for i in BillingInterval] == [30, 90, 360]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(at("2027-01-31T09:00"))


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
async def sync(clock: ManualClock, notifier: RecordingNotifier) -> Services:
    services = build_services(
        MemoryStore(), Settings(DATABASE_URL="memory://"), clock=clock, notifier=notifier
    )
    await services.credits.credit("alice", 1000, TransactionType.GRANT, "funds")
    return services


async def charges(services: Services) -> list[tuple[str, int]]:
    entries = await services.credits.transactions("alice", limit=100)
    return sorted(
        (e.metadata["periodStart"][:10], -e.amount)
        for e in entries
        if e.app_id == "sync" and e.metadata
    )


async def test_months_of_billing_follow_the_calendar(sync: Services, clock: ManualClock) -> None:
    done = await sync.sync.activate("alice")
    assert done.amount_charged == 30
    assert done.subscription.next_charge_at == at("2027-02-28T09:00")
    for day in ("2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31"):
        clock.set(at(f"{day}T09:00"))
        report = await sync.sync.charge_due()
        assert (report.charged, report.paused, report.total) == (1, 0, 1)
        assert (await sync.sync.charge_due()).total == 0
    assert await charges(sync) == [
        ("2027-01-31", 30),
        ("2027-02-28", 30),
        ("2027-03-31", 30),
        ("2027-04-30", 30),
        ("2027-05-31", 30),
    ]
    status = await sync.sync.status("alice")
    assert status.next_charge_at == at("2027-06-30T09:00")
    assert (await sync.reconcile.run()).ok


async def test_downtime_is_caught_up_one_period_at_a_time(
    sync: Services, clock: ManualClock
) -> None:
    await sync.sync.activate("alice")
    clock.set(at("2027-05-01T00:00"))  # three charges missed while nothing ran
    report = await sync.sync.charge_due()
    assert (report.charged, report.total) == (3, 3)
    assert (await sync.sync.charge_due()).charged == 0
    assert [day for day, _ in await charges(sync)] == [
        "2027-01-31",
        "2027-02-28",
        "2027-03-31",
        "2027-04-30",
    ]


async def test_interval_change_applies_at_the_next_charge(
    sync: Services, clock: ManualClock
) -> None:
    await sync.sync.activate("alice")
    changed = await sync.sync.change_interval("alice", "yearly")
    assert changed.billed_interval == BillingInterval.YEARLY
    assert (await sync.sync.status("alice")).interval == BillingInterval.YEARLY
    clock.set(at("2027-02-28T09:00"))
    await sync.sync.charge_due()
    assert await charges(sync) == [("2027-01-31", 30), ("2027-02-28", 360)]
    status = await sync.sync.status("alice")
    assert status.next_charge_at == at("2028-02-29T09:00")  # 31 Jan + 13 months, clamped


async def test_running_out_pauses_and_notifies_then_reactivation_works(
    sync: Services, clock: ManualClock, notifier: RecordingNotifier
) -> None:
    await sync.credits.use("alice", 940, "chat", "spend down")  # 60 left
    await sync.sync.activate("alice")  # 30 left
    clock.set(at("2027-02-28T09:00"))
    assert (await sync.sync.charge_due()).charged == 1  # 0 left
    clock.set(at("2027-03-31T09:00"))
    report = await sync.sync.charge_due()
    assert (report.charged, report.paused) == (0, 1)
    assert notifier.paused == [("alice", "monthly", 30)]
    status = await sync.sync.status("alice")
    assert (status.active, status.paused_at, status.next_charge_at) == (
        False,
        at("2027-03-31T09:00"),
        None,
    )
    assert (await sync.sync.charge_due()).total == 0
    with pytest.raises(InsufficientCredits):
        await sync.sync.activate("alice")
    await sync.credits.credit("alice", 100, TransactionType.PURCHASE, "top up")
    clock.set(at("2027-04-10T12:00"))
    again = await sync.sync.activate("alice", "quarterly")
    assert again.subscription.next_charge_at == at("2027-07-10T12:00")
    assert (await sync.sync.status("alice")).paused_at is None
    assert (await sync.credits.balance("alice")).balance == 10
    assert (await sync.reconcile.run()).ok


async def test_a_failing_notifier_never_undoes_the_pause(clock: ManualClock) -> None:
    services = build_services(
        MemoryStore(),
        Settings(DATABASE_URL="memory://"),
        clock=clock,
        notifier=RecordingNotifier(failing=True),
    )
    await services.credits.credit("alice", 30, TransactionType.GRANT, "funds")
    await services.sync.activate("alice")
    clock.set(at("2027-03-01T00:00"))
    assert (await services.sync.charge_due()).paused == 1
    assert not (await services.sync.status("alice")).active


async def test_gifted_subscriptions_are_never_charged_or_paused(
    sync: Services, clock: ManualClock
) -> None:
    await sync.credits.credit("bob", 0 + 1, TransactionType.GRANT, "one credit")
    gifted = await sync.sync.gift("bob", "admin-1")
    assert (gifted.is_gifted, gifted.gifted_by, gifted.active) == (True, "admin-1", True)
    assert (await sync.sync.gift("bob", "admin-2")).gifted_by == "admin-1"  # idempotent
    clock.advance(timedelta(days=400))
    assert (await sync.sync.charge_due()).total == 0
    status = await sync.sync.status("bob")
    assert (status.active, status.gifted, status.next_charge_at) == (True, True, None)
    with pytest.raises(SyncStateError, match="already gifted"):
        await sync.sync.activate("bob")
    with pytest.raises(SyncStateError, match="contact support"):
        await sync.sync.deactivate("bob")
    with pytest.raises(SyncStateError):
        await sync.sync.change_interval("bob", "yearly")
    revoked = await sync.sync.revoke_gift("bob")
    assert (revoked.is_gifted, revoked.active) == (False, False)
    assert (await sync.credits.balance("bob")).balance == 1
