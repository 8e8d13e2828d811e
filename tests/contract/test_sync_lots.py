"""Cloud Sync charges burn credit lots as debits do, on every store, in one billing run
that mixes every case (a batch decides them together): a first lot that pays it all,
first lots that fall short (the first two too), the burn order's keys, held credits,
lots past their expiry, credits lacking; and a run while the owners spend."""

from __future__ import annotations

import asyncio

from mana_credits_adapters.clock import TickingClock
from mana_credits_core import InsufficientCredits, TransactionType
from mana_credits_core.services import Services

from .test_lots import DAY, consistent, grant, lots_of, paid_by


async def activate(s: Services, user: str) -> None:
    """Sync active for `user`, its first period paid by a lot of its own (used up)."""
    await grant(s, user, 30)
    await s.sync.activate(user)


async def last_charge(s: Services, user: str) -> dict[str, int]:
    """What each lot paid of `user`'s newest Sync charge."""
    entries = await s.credits.transactions(user, limit=100)
    newest = next(e for e in entries if e.app_id == "sync")
    return await paid_by(s, newest.id)


async def sync_charges(s: Services, user: str) -> int:
    return sum(1 for e in await s.credits.transactions(user, limit=100) if e.app_id == "sync")


async def test_one_run_burns_each_users_lots_in_the_debit_order(
    services: Services, clock: TickingClock
) -> None:
    s, t0 = services, clock.now()
    users = ["plain", "short", "thin", "ranked", "expiring", "lapsing", "lapsing-poor", "held"]
    users.append("poor")
    for user in users:
        await activate(s, user)
    plain = await grant(s, "plain", 100)
    short_first = await grant(s, "short", 10, priority=10)
    short_next = await grant(s, "short", 50)
    thin = [await grant(s, "thin", 10, priority=p) for p in (10, 20, 30)]  # two fall short
    thin_last = await grant(s, "thin", 50)
    await grant(s, "ranked", 40)
    await grant(s, "ranked", 40, expires_at=t0 + 90 * DAY)
    ranked = await grant(s, "ranked", 40, priority=40)  # newest, but burned first
    await grant(s, "expiring", 40)
    expiring = await grant(s, "expiring", 40, expires_at=t0 + 90 * DAY)
    lapsed = await grant(s, "lapsing", 20, expires_at=t0 + 10 * DAY)
    kept = await grant(s, "lapsing", 50)
    await grant(s, "lapsing-poor", 20, expires_at=t0 + 10 * DAY)
    await grant(s, "lapsing-poor", 15)
    held = await grant(s, "held", 40, priority=10)
    await s.reservations.reserve("held", 25, "a job")  # 15 of the first lot stay free
    held_next = await grant(s, "held", 50)
    await grant(s, "poor", 20)

    clock.advance(32 * DAY)
    report = await s.sync.charge_due(batch_size=100)

    assert (report.charged, report.paused, report.errors) == (7, 2, 0)
    assert await last_charge(s, "plain") == {plain: 30}
    assert await last_charge(s, "short") == {short_first: 10, short_next: 20}
    assert await last_charge(s, "thin") == dict.fromkeys(thin, 10)
    assert (await lots_of(s, "thin"))[thin_last].remaining == 50
    assert await last_charge(s, "ranked") == {ranked: 30}
    assert await last_charge(s, "expiring") == {expiring: 30}
    assert await last_charge(s, "lapsing") == {kept: 30}
    assert await last_charge(s, "held") == {held: 15, held_next: 15}
    expired = [
        e
        for e in await s.credits.transactions("lapsing", limit=100)
        if e.type == TransactionType.EXPIRE
    ]
    assert [(e.amount, await paid_by(s, e.id)) for e in expired] == [(-20, {lapsed: 20})]
    balances = {user: (await s.credits.balance(user)).balance for user in users}
    assert balances == {
        "plain": 70,
        "short": 30,
        "thin": 50,
        "ranked": 90,
        "expiring": 50,
        "lapsing": 20,
        "lapsing-poor": 15,  # its 20 expired before the charge, which then fell short
        "held": 35,
        "poor": 20,
    }
    statuses = {user: (await s.sync.status(user)).active for user in users}
    assert [u for u, active in statuses.items() if not active] == ["lapsing-poor", "poor"]
    assert (await lots_of(s, "held"))[held].held == 25
    assert (await s.sync.charge_due()).total == 0  # each period once
    await consistent(s, *users)


async def test_a_run_while_the_owners_spend_charges_each_period_once(
    services: Services, clock: TickingClock
) -> None:
    s, t0 = services, clock.now()
    users = [f"busy-{n:02d}" for n in range(12)]
    for user in users:
        await activate(s, user)
        await grant(s, user, 25, priority=20)
        await grant(s, user, 25, expires_at=t0 + 60 * DAY)
        await grant(s, user, 40)
    clock.advance(32 * DAY)

    async def spend(user: str) -> int:
        spent = 0
        for _ in range(6):
            try:
                await s.credits.use(user, 9, "chat", "work")
                spent += 9
            except InsufficientCredits:
                pass
        return spent

    spending = asyncio.gather(*(spend(user) for user in users))
    billed, spent = await asyncio.gather(s.sync.charge_due(batch_size=5), spending)

    assert billed.errors == 0
    assert billed.charged + billed.paused == len(users)
    for user, used in zip(users, spent, strict=True):
        charged = await sync_charges(s, user) - 1  # the activation's
        active = (await s.sync.status(user)).active
        assert (charged, active) in ((1, True), (0, False)), user
        balance = (await s.credits.balance(user)).balance
        assert balance == 90 - used - 30 * charged >= 0, user
    assert (await s.sync.charge_due()).total == 0
    await consistent(s, *users)
