"""Notices on every store: credits expiring within seven days (once per lot, racing
sweeps included, retried after a failed send) and a balance running low (once per
crossing, never failing the debit)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core import TransactionType
from mana_credits_core.ports import Store
from mana_credits_core.services import Services

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


class RecordingNotifier:
    """Records what it is asked to send; raises while `failing`."""

    def __init__(self) -> None:
        self.expiring: list[tuple[str, int, datetime]] = []
        self.low: list[tuple[str, int, int]] = []
        self.failing = False

    async def sync_paused(self, user_id: str, *, interval: str, required: int) -> None:
        return None

    async def credits_expiring(self, user_id: str, *, credits: int, expires_at: datetime) -> None:
        await asyncio.sleep(0)  # let a racing sweep run in between
        if self.failing:
            raise ConnectionError("notification service down")
        self.expiring.append((user_id, credits, expires_at))

    async def low_balance(self, user_id: str, *, balance: int, threshold: int) -> None:
        if self.failing:
            raise ConnectionError("notification service down")
        self.low.append((user_id, balance, threshold))

    async def close(self) -> None:
        return None


async def lows(s: Services, notifier: RecordingNotifier) -> list[tuple[str, int, int]]:
    """The low-balance notices sent, once those in flight have gone out."""
    assert s.credits.alerts is not None
    await s.credits.alerts.drain()
    return notifier.low


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
async def services(
    store: Store, clock: TickingClock, settings: Settings, notifier: RecordingNotifier
) -> AsyncIterator[Services]:
    built = build_services(store, settings, clock=clock, notifier=notifier)
    yield built
    await built.close()


async def grant(s: Services, user: str, amount: int, expires_at: datetime | None = None) -> str:
    done = await s.credits.grant(user, amount, "test", "ops", expires_at=expires_at)
    return done.entry.id


def day_of(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


async def test_the_expiry_notice_goes_once_for_the_lots_in_the_window(
    services: Services, clock: TickingClock, notifier: RecordingNotifier
) -> None:
    s, t0 = services, clock.now()  # 2026-01-01T00:00Z
    await grant(s, "ana", 10, t0 + 3 * DAY)
    await grant(s, "ana", 15, t0 + 3 * DAY + HOUR)  # the same day: one notice for both
    await grant(s, "ana", 7, t0 + 10 * DAY)  # outside the window for now
    await grant(s, "ana", 100)  # never expires
    await s.credits.credit("ana", 50, TransactionType.PURCHASE, "bought")
    await grant(s, "bob", 8, t0 + 7 * DAY - HOUR)  # just inside
    await grant(s, "cat", 5, t0 + 2 * DAY)
    await s.credits.use("cat", 5, "chat", "spent it all")  # nothing left to announce

    assert await s.lots.send_expiry_notices() == 2
    assert sorted((u, n, day_of(at)) for u, n, at in notifier.expiring) == [
        ("ana", 25, "2026-01-04"),
        ("bob", 8, "2026-01-07"),
    ]
    assert await s.lots.send_expiry_notices() == 0  # already announced
    assert len(notifier.expiring) == 2

    clock.advance(4 * DAY)  # the 10-day lot is now 6 days away
    assert await s.lots.send_expiry_notices() == 1
    assert notifier.expiring[-1][:2] == ("ana", 7)
    assert await s.lots.send_expiry_notices() == 0


async def test_two_sweeps_at_once_send_one_notice_per_lot(
    services: Services, clock: TickingClock, notifier: RecordingNotifier
) -> None:
    s = services
    users = [f"u{i:02}" for i in range(12)]
    for user in users:
        await grant(s, user, 10, clock.now() + 2 * DAY)
    first, second = await asyncio.gather(
        s.lots.send_expiry_notices(batch_size=5), s.lots.send_expiry_notices()
    )
    assert first + second == len(users)
    assert sorted(u for u, _, _ in notifier.expiring) == users
    assert await s.lots.send_expiry_notices() == 0


async def test_a_notice_the_service_refuses_is_sent_by_a_later_sweep(
    services: Services, clock: TickingClock, notifier: RecordingNotifier
) -> None:
    s = services
    await grant(s, "ana", 10, clock.now() + 2 * DAY)
    notifier.failing = True
    assert await s.lots.send_expiry_notices() == 0
    assert await s.lots.send_expiry_notices() == 0  # tried again, still down
    notifier.failing = False
    assert await s.lots.send_expiry_notices() == 1
    assert [(u, n) for u, n, _ in notifier.expiring] == [("ana", 10)]
    assert await s.lots.send_expiry_notices() == 0


async def test_the_low_balance_notice_goes_once_per_crossing(
    services: Services, notifier: RecordingNotifier
) -> None:
    s = services
    await grant(s, "ana", 60)
    assert await lows(s, notifier) == []  # a credit never notifies
    await s.credits.use("ana", 10, "chat", "a")  # 60 -> 50: not below 50
    assert await lows(s, notifier) == []
    await s.credits.use("ana", 10, "chat", "b")  # 50 -> 40: crossed
    assert await lows(s, notifier) == [("ana", 40, 50)]
    await s.credits.use("ana", 10, "chat", "c")  # 40 -> 30: already below
    assert await lows(s, notifier) == [("ana", 40, 50)]
    await grant(s, "ana", 70)  # 100: armed again
    await s.credits.use("ana", 80, "chat", "d")  # 100 -> 20: crossed again
    assert await lows(s, notifier) == [("ana", 40, 50), ("ana", 20, 50)]
    replay = await s.credits.use("ana", 5, "chat", "e", idempotency_key="k")
    again = await s.credits.use("ana", 5, "chat", "e", idempotency_key="k")
    assert (replay.replayed, again.replayed) == (False, True)
    assert len(await lows(s, notifier)) == 2


async def test_a_hold_that_crosses_notifies_and_its_commit_does_not(
    services: Services, notifier: RecordingNotifier
) -> None:
    s = services
    await grant(s, "bob", 100)
    held = await s.reservations.reserve("bob", 70, "render")  # 100 -> 30 spendable
    assert await lows(s, notifier) == [("bob", 30, 50)]
    await s.reservations.commit(held.reservation.id)
    assert await lows(s, notifier) == [("bob", 30, 50)]
    assert (await s.credits.balance("bob")).balance == 30


async def test_a_failing_notifier_never_fails_the_debit(
    services: Services, notifier: RecordingNotifier
) -> None:
    s = services
    await grant(s, "ana", 60)
    await grant(s, "bob", 60)
    notifier.failing = True
    used = await s.credits.use("ana", 20, "chat", "work")
    held = await s.reservations.reserve("bob", 20, "render")
    assert (used.balance is not None and used.balance.balance, held.balance) == (40, 40)
    assert (await s.credits.balance("ana")).balance == 40
    assert await lows(s, notifier) == []


async def test_the_threshold_is_a_setting_and_zero_turns_it_off(
    store: Store, clock: TickingClock, settings: Settings, notifier: RecordingNotifier
) -> None:
    for threshold, expected in ((0, []), (500, [("ana", 200, 500)])):
        notifier.low.clear()
        s = build_services(
            store,
            Settings(MANA_CREDITS_HOME=settings.home, MANA_CREDITS_LOW_BALANCE=threshold),
            clock=clock,
            notifier=notifier,
        )
        try:
            user = "ana"
            await s.credits.grant(user, 500, "test", "ops")
            await s.credits.use(user, 300, "chat", "work")
            assert await lows(s, notifier) == expected
            await s.credits.use(user, 200, "chat", "rest")  # to 0 for the next round
        finally:
            await s.close()


@pytest.mark.postgres
async def test_a_notice_claim_waits_for_the_balance_lock_as_every_writer_of_lots(
    clean_pg_store: SqlStore, clock: TickingClock, settings: Settings
) -> None:
    # A claim that took lot rows before the balance lock could hold a lot a sweep
    # (balance first, then lots) is about to update while waiting for one it holds.
    s = build_services(clean_pg_store, settings, clock=clock)
    await grant(s, "ana", 10, clock.now() + 3 * DAY)
    blocked = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE CAST(:holder AS integer) = ANY(pg_blocking_pids(pid))"
    )
    async with clean_pg_store.unit_of_work() as uow:
        async with clean_pg_store.engine.connect() as holder:
            holder_pid = await holder.scalar(sa.text("SELECT pg_backend_pid()"))
            await holder.execute(
                sa.text("SELECT 1 FROM credits.balances WHERE user_id = 'ana' FOR UPDATE")
            )
            claim = asyncio.create_task(uow.lots.claim_notices("ana", clock.now()))
            try:
                async with clean_pg_store.engine.connect() as watcher:
                    waited = False
                    for _ in range(3000):  # bounded: 30 s
                        if await watcher.scalar(blocked, {"holder": holder_pid}):
                            waited = True
                            break
                        if claim.done():
                            break
                        await asyncio.sleep(0.01)
                finished_early = claim.done()
            finally:
                await holder.rollback()  # the lock goes, whatever happened above
        claimed = await claim
        await uow.commit()
    await s.close()
    assert waited, "the claim did not wait for the balance lock"
    assert not finished_early
    assert [lot.remaining for lot in claimed] == [10]
