"""The expiry sweep on every store: many users per transaction, in several batches,
each lot expired once; a user whose lots are out of step skipped while the rest of
their batch expires; sweeps racing each other and debits."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest

from mana_credits_adapters.clock import TickingClock
from mana_credits_core import TransactionType
from mana_credits_core.lot_book import expiry_key
from mana_credits_core.ports import Store
from mana_credits_core.services import Services

from .test_lots import DAY, MINUTE, consistent, grant, lots_of, paid_by


async def expire_entries(s: Services, user: str) -> dict[str | None, int]:
    """The user's `expire` entries: idempotency key -> amount (one entry per key)."""
    entries = await s.credits.transactions(user, limit=100)
    expired = [e for e in entries if e.type == TransactionType.EXPIRE]
    keys = [e.idempotency_key for e in expired]
    assert len(keys) == len(set(keys)), keys
    return {e.idempotency_key: e.amount for e in expired}


async def set_balance(store: Store, user: str, balance: int) -> None:
    """Put the user's balance out of step with their lots, behind the service's back:
    with raw SQL, or in the memory store's tables."""
    from mana_credits_adapters.memory import MemoryStore

    if isinstance(store, MemoryStore):
        found = store.state.balances[user]
        store.state.balances[user] = replace(found, balance=balance)
        return
    import sqlalchemy as sa

    from mana_credits_adapters.sql.store import SqlStore
    from mana_credits_adapters.sql.tables import balances

    assert isinstance(store, SqlStore)
    async with store.engine.begin() as connection:
        b = balances.c
        await connection.execute(
            sa.update(balances).where(b.user_id == user).values(balance=balance)
        )


async def test_one_sweep_expires_many_users_in_batches_each_lot_once(
    services: Services, clock: TickingClock
) -> None:
    s, t0 = services, clock.now()
    users = [f"u{i:02}" for i in range(13)]
    due: dict[str, list[str]] = {}
    later: dict[str, str] = {}
    for n, user in enumerate(users):
        # Two lots due (expiries interleaved across users), one due after the sweep,
        # one that never expires.
        due[user] = [
            await grant(s, user, 10, expires_at=t0 + DAY + n * MINUTE),
            await grant(s, user, 7, expires_at=t0 + DAY + (30 + n) * MINUTE),
        ]
        later[user] = await grant(s, user, 4, expires_at=t0 + 30 * DAY)
        await grant(s, user, 5)
    await s.reservations.reserve(users[3], 20, "render")  # 10 + 7 + 3 of `later`
    clock.advance(2 * DAY)

    # 3 lots looked at a round: the 26 lots past their expiry (24 with free credits)
    # take many rounds.
    assert await s.lots.expire(batch_size=3) == 2 * len(users) - 2

    for user in users:
        first, second = due[user]
        expected = {expiry_key(first): -10, expiry_key(second): -7}
        if user == users[3]:
            expected = {}  # all held: they expire only if the hold is released
        assert await expire_entries(s, user) == expected, user
        lots = await lots_of(s, user)
        for lot_id in due[user]:
            if user != users[3]:
                assert lots[lot_id].remaining == 0
                assert lots[lot_id].expired_at is not None
                [entry] = [
                    e
                    for e in await s.credits.transactions(user, limit=100)
                    if e.idempotency_key == expiry_key(lot_id)
                ]
                assert await paid_by(s, entry.id) == {lot_id: lots[lot_id].amount}
        assert lots[later[user]].expired_at is None
        assert (lots[later[user]].remaining, lots[later[user]].held) == (
            (4, 3) if user == users[3] else (4, 0)
        )
        balance = (await s.credits.balance(user)).balance
        assert balance == (6 if user == users[3] else 9), user
    assert await s.lots.expire(batch_size=3) == 0
    # The hold, past its time-to-live, goes back: its credits in lots past their
    # expiry expire then, with one entry for the release.
    assert await s.reservations.release_expired() == 1
    assert (await s.credits.balance(users[3])).balance == 9
    await consistent(s, *users)


async def test_a_user_out_of_step_is_skipped_and_the_rest_of_the_batch_expires(
    store: Store, services: Services, clock: TickingClock, caplog: pytest.LogCaptureFixture
) -> None:
    s, t0 = services, clock.now()
    users = [f"u{i:02}" for i in range(7)]
    expiring = {}
    for n, user in enumerate(users):
        expiring[user] = await grant(s, user, 10, expires_at=t0 + DAY + n * MINUTE)
        await grant(s, user, 5)
    bad = users[2]
    await set_balance(store, bad, 3)  # its lots hold 15: expiring 10 would go below 0
    clock.advance(2 * DAY)

    # First round u00..u03 (u02 in the middle), then u04..u06 while u02 is still due.
    with caplog.at_level(logging.ERROR, logger="mana_credits.lots"):
        assert await s.lots.expire(batch_size=4) == len(users) - 1
    assert [r.getMessage() for r in caplog.records] == [
        f"expiring the lots of {bad} failed; skipped"
    ]

    for user in users:
        if user == bad:
            assert await expire_entries(s, user) == {}
            assert (await s.credits.balance(user)).balance == 3
            assert (await lots_of(s, user))[expiring[user]].expired_at is None
            continue
        assert await expire_entries(s, user) == {expiry_key(expiring[user]): -10}
        assert (await s.credits.balance(user)).balance == 5
    assert await s.lots.expire(batch_size=4) == 0  # the bad user does not stall a sweep
    report = await s.reconcile.run()
    assert {d.user_id for d in report.drifts} == {bad}


async def test_sweeps_racing_each_other_and_debits_expire_each_lot_once(
    services: Services, clock: TickingClock
) -> None:
    """Two sweeps of different batch sizes and a debit on every user, all at once: the
    balance locks are taken in user id order by all of them, so none deadlocks, and
    every lot expires once, by a sweep or by the debit that found it first."""
    s, t0 = services, clock.now()
    users = [f"u{i:02}" for i in range(20)]
    expiring: dict[str, list[str]] = {}
    for n, user in enumerate(users):
        expiring[user] = [
            await grant(s, user, 10, expires_at=t0 + DAY + (n + k * 20) * MINUTE) for k in range(3)
        ]
        await grant(s, user, 5)
    clock.advance(2 * DAY)

    async def debit(user: str) -> None:
        await s.credits.use(user, 1, "chat", "work")

    swept = asyncio.gather(s.lots.expire(batch_size=3), s.lots.expire(batch_size=7))
    debits = asyncio.gather(*(debit(user) for user in reversed(users)))
    first, second = (await asyncio.gather(swept, debits))[0]
    assert first + second <= 3 * len(users)  # the debits expired the rest
    for user in users:
        assert await expire_entries(s, user) == {expiry_key(lot): -10 for lot in expiring[user]}
        assert (await s.credits.balance(user)).balance == 4
    assert await s.lots.expire() == 0
    await consistent(s, *users)
