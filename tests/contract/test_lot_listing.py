"""Reading lots on every store: a user's open lots in burn order, and the credits due
to expire within some days."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mana_credits_adapters.clock import TickingClock
from mana_credits_core import InvalidInput
from mana_credits_core.lots import LotSource
from mana_credits_core.ports import Expiring
from mana_credits_core.services import Services

DAY = timedelta(days=1)


async def test_open_lots_are_those_with_credits_left_in_burn_order(
    services: Services, clock: TickingClock
) -> None:
    s = services
    soon = clock.now() + 10 * DAY
    kept = await s.credits.grant("alice", 40, "kept", "ops")
    later = await s.credits.grant("alice", 20, "later", "ops", expires_at=soon + DAY)
    first = await s.credits.grant("alice", 5, "first", "ops", priority=10)
    sooner = await s.credits.grant("alice", 30, "sooner", "ops", expires_at=soon)
    await s.credits.grant("bob", 7, "other", "ops", priority=0)
    await s.credits.use("alice", 5, "chat", "spend")  # empties `first`

    lots = await s.lots.open_lots("alice")

    assert [lot.id for lot in lots] == [sooner.entry.id, later.entry.id, kept.entry.id]
    assert {lot.user_id for lot in lots} == {"alice"}
    assert [(lot.source, lot.amount, lot.remaining) for lot in lots] == [
        (LotSource.GRANT, 30, 30),
        (LotSource.GRANT, 20, 20),
        (LotSource.GRANT, 40, 40),
    ]
    assert first.entry.id in {lot.id for lot in await s.lots.of_user("alice")}
    assert await s.lots.open_lots("nobody") == []
    with pytest.raises(InvalidInput):
        await s.lots.open_lots("")


async def test_expiring_sums_free_credits_due_within_the_days(
    services: Services, clock: TickingClock
) -> None:
    s = services
    now = clock.now()
    await s.credits.grant("alice", 30, "promo", "ops", expires_at=now + 5 * DAY)
    await s.credits.grant("alice", 10, "promo 2", "ops", expires_at=now + 20 * DAY)
    await s.credits.grant("bob", 8, "promo", "ops", expires_at=now + 29 * DAY)
    await s.credits.grant("bob", 100, "never", "ops")
    await s.credits.grant("carol", 50, "far", "ops", expires_at=now + 40 * DAY)
    await s.reservations.reserve("alice", 12, "job")  # held: not counted as expiring
    assert await s.lots.expiring(30) == Expiring(credits=30 - 12 + 10 + 8, users=2, lots=3)
    assert await s.lots.expiring(10) == Expiring(credits=18, users=1, lots=1)
    assert await s.lots.expiring(60) == Expiring(credits=86, users=3, lots=4)

    clock.advance(6 * DAY)
    await s.lots.expire()  # the first lot's free credits are gone; its held ones stay
    assert await s.lots.expiring(30) == Expiring(credits=18, users=2, lots=2)


@pytest.mark.parametrize("days", [0, -1, 3661])
async def test_expiring_refuses_a_window_out_of_range(services: Services, days: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        await services.lots.expiring(days)
    assert raised.value.field == "days"
