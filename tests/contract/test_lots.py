"""Credit lots on every store: the burn order, allocations, expiry, holds, claw-backs,
forfeits, Cloud Sync and gifts, with the lot invariants checked after each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import ManualClock, TickingClock
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core import (
    InsufficientCredits,
    InvalidInput,
    Principal,
    ReservationNotPending,
    TransactionType,
)
from mana_credits_core.lot_book import expiry_key, held_expiry_key
from mana_credits_core.lots import DEFAULT_PRIORITY, Allocation, Lot, LotSource
from mana_credits_core.ports import Store
from mana_credits_core.services import Services

from ..fakes.model_gateway import ModelGateway

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


async def lots_of(s: Services, user: str) -> dict[str, Lot]:
    return {lot.id: lot for lot in await s.lots.of_user(user)}


async def paid_by(s: Services, entry_id: str) -> dict[str, int]:
    return {a.lot_id: a.amount for a in await s.lots.allocations(entry_id)}


async def consistent(s: Services, *users: str) -> None:
    """The invariants: reconcile finds nothing, every debit entry is paid by its lots
    and no lot leaves its bounds."""
    report = await s.reconcile.run()
    assert report.ok, report.drifts
    for user in users:
        for entry in await s.credits.transactions(user, limit=100):
            if entry.amount < 0:
                assert sum((await paid_by(s, entry.id)).values()) == -entry.amount, entry
        for lot in await s.lots.of_user(user):
            assert 0 <= lot.held <= lot.remaining <= lot.amount, lot


async def grant(
    s: Services,
    user: str,
    amount: int,
    *,
    expires_at: datetime | None = None,
    priority: int | None = None,
) -> str:
    """Grant credits; the id of their lot (a credit's lot has the entry's id)."""
    done = await s.credits.grant(
        user, amount, "test", "ops", expires_at=expires_at, priority=priority
    )
    return done.entry.id


async def test_debits_burn_lots_by_priority_then_expiry_then_age(
    services: Services, clock: TickingClock
) -> None:
    s, t0 = services, clock.now()
    older = await grant(s, "u", 30)  # never expires: after every expiring lot
    late = await grant(s, "u", 10, expires_at=t0 + 30 * DAY)
    soon = await grant(s, "u", 10, expires_at=t0 + 3 * DAY)
    first = await grant(s, "u", 5, priority=10)  # an operator's priority beats any expiry
    last = await grant(s, "u", 20, priority=90, expires_at=t0 + DAY)
    newer = await grant(s, "u", 10)
    used = await s.credits.use("u", 60, "chat", "work")
    assert await paid_by(s, used.entry.id) == {first: 5, soon: 10, late: 10, older: 30, newer: 5}
    left = await lots_of(s, "u")
    assert {i: x.remaining for i, x in left.items() if x.remaining} == {newer: 5, last: 20}
    again = await s.credits.use("u", 10, "chat", "more")
    assert await paid_by(s, again.entry.id) == {newer: 5, last: 5}
    await consistent(s, "u")


async def test_ties_burn_the_lot_with_the_smaller_id_on_every_store(
    store: Store, settings: Settings
) -> None:
    s = build_services(store, settings, clock=ManualClock())  # one instant for all
    try:
        twins = [await grant(s, "u", 10) for _ in range(3)]
        used = await s.credits.use("u", 15, "chat", "work")
        ordered = sorted(twins)
        assert await paid_by(s, used.entry.id) == {ordered[0]: 10, ordered[1]: 5}
        await consistent(s, "u")
    finally:
        await s.close()


async def test_grants_and_rewards_carry_expiry_and_priority(
    services: Services, clock: TickingClock
) -> None:
    s, t0 = services, clock.now()
    lot_id = await grant(s, "u", 10, expires_at=t0 + DAY, priority=7)
    reward = await s.credits.reward("u", 5, "feedback", "fb-1", expires_at=t0 + 2 * DAY, priority=0)
    lots = await lots_of(s, "u")
    assert (lots[lot_id].expires_at, lots[lot_id].priority) == (t0 + DAY, 7)
    assert (lots[lot_id].source, lots[lot_id].amount, lots[lot_id].entry_id) == (
        LotSource.GRANT, 10, lot_id,
    )  # fmt: skip
    rewarded = lots[reward.entry.id]
    assert (rewarded.expires_at, rewarded.priority) == (t0 + 2 * DAY, 0)
    plain = await s.credits.credit("u", 3, TransactionType.REFUND, "sorry")
    refunded = (await lots_of(s, "u"))[plain.entry.id]
    assert (refunded.source, refunded.priority, refunded.expires_at) == (
        LotSource.REFUND, DEFAULT_PRIORITY, None,
    )  # fmt: skip
    bad: list[dict[str, object]] = [
        {"priority": 101},
        {"priority": -1},
        {"expires_at": t0 - DAY},
        {"expires_at": datetime(2030, 1, 1)},  # noqa: DTZ001 - naive on purpose
    ]
    for wrong in bad:
        with pytest.raises(InvalidInput) as refused:
            await s.credits.grant("u", 1, "x", "ops", **wrong)  # type: ignore[arg-type]
        assert refused.value.field in ("priority", "expiresAt")
    with pytest.raises(InvalidInput, match="purchased credits never expire"):
        await s.credits.credit("u", 1, TransactionType.PURCHASE, "x", expires_at=clock.now() + DAY)
    assert (await s.credits.balance("u")).balance == 18  # nothing refused was credited
    await consistent(s, "u")


async def test_two_sweeps_at_once_expire_every_lot_exactly_once(
    services: Services, clock: TickingClock
) -> None:
    s = services
    users = [f"u{i:02}" for i in range(12)]
    expiring = {}
    for user in users:
        expiring[user] = await grant(s, user, 10, expires_at=clock.now() + DAY)
        await grant(s, user, 5)
    assert await s.lots.expire() == 0  # nothing due yet
    clock.advance(2 * DAY)
    first, second = await asyncio.gather(s.lots.expire(batch_size=5), s.lots.expire())
    assert first + second == len(users)
    for user in users:
        entries = await s.credits.transactions(user)
        expired = [e for e in entries if e.type == TransactionType.EXPIRE]
        assert [(e.amount, e.idempotency_key) for e in expired] == [
            (-10, expiry_key(expiring[user]))
        ]
        assert await paid_by(s, expired[0].id) == {expiring[user]: 10}
        assert (await s.credits.balance(user)).balance == 5
        lot = (await lots_of(s, user))[expiring[user]]
        assert (lot.remaining, lot.expired_at is not None) == (0, True)
    assert await s.lots.expire() == 0
    await consistent(s, *users)


async def test_a_debit_after_expiry_but_before_the_sweep_never_spends_expired_credits(
    services: Services, clock: TickingClock
) -> None:
    s = services
    promo = await grant(s, "u", 10, expires_at=clock.now() + DAY)
    kept = await grant(s, "u", 5)
    clock.advance(2 * DAY)
    assert (await s.credits.balance("u")).balance == 15  # not swept yet
    with pytest.raises(InsufficientCredits) as refused:
        await s.credits.use("u", 8, "chat", "too much now")
    assert refused.value.available == 5
    used = await s.credits.use("u", 3, "chat", "fits")
    assert await paid_by(s, used.entry.id) == {kept: 3}
    expired = [e for e in await s.credits.transactions("u") if e.type == TransactionType.EXPIRE]
    assert [(e.amount, e.idempotency_key) for e in expired] == [(-10, expiry_key(promo))]
    assert await s.lots.expire() == 0  # the debit expired it already
    await consistent(s, "u")


async def test_held_credits_outlive_their_lots_expiry_until_committed(
    services: Services, clock: TickingClock
) -> None:
    s = services
    promo = await grant(s, "u", 10, expires_at=clock.now() + MINUTE)
    held = await s.reservations.reserve("u", 4, "render", app_id="studio")
    clock.advance(2 * MINUTE)
    assert await s.lots.expire() == 1
    lot = (await lots_of(s, "u"))[promo]
    assert (lot.remaining, lot.held) == (4, 4)  # only the free 6 expired
    assert (await s.credits.balance("u")).balance == 0
    committed = await s.reservations.commit(held.reservation.id)
    assert await paid_by(s, committed.id) == {promo: 4}
    lot = (await lots_of(s, "u"))[promo]
    assert (lot.remaining, lot.held) == (0, 0)
    await consistent(s, "u")


@pytest.mark.parametrize("how", ["refund", "ttl"])
async def test_held_credits_of_an_expired_lot_expire_when_released(
    services: Services, clock: TickingClock, how: str
) -> None:
    s = services
    promo = await grant(s, "u", 10, expires_at=clock.now() + MINUTE)
    kept = await grant(s, "u", 3)
    held = await s.reservations.reserve("u", 12, "render")  # 10 of promo, 2 of kept
    rid = held.reservation.id
    clock.advance(2 * MINUTE)
    assert await s.lots.expire() == 0  # promo is all held: nothing free to expire
    if how == "refund":
        assert await s.reservations.refund(rid) == 3  # kept's 1 free and 2 given back
    else:
        clock.advance(s.reservations.ttl)
        assert await s.reservations.release_expired() == 1
        with pytest.raises(ReservationNotPending):
            await s.reservations.commit(rid)
    entries = await s.credits.transactions("u")
    lapsed = [e for e in entries if e.type == TransactionType.EXPIRE]
    assert [(e.amount, e.idempotency_key) for e in lapsed] == [(-10, held_expiry_key(rid))]
    assert await paid_by(s, lapsed[0].id) == {promo: 10}
    lots = await lots_of(s, "u")
    assert (lots[promo].remaining, lots[promo].held) == (0, 0)
    assert lots[promo].expired_at is not None
    assert (lots[kept].remaining, lots[kept].held) == (3, 0)
    assert await s.lots.expire() == 0
    await consistent(s, "u")


@pytest.fixture
async def shop(
    store: Store, settings: Settings
) -> AsyncIterator[tuple[Services, ModelGateway, TickingClock]]:
    gateway, clock = ModelGateway(), TickingClock()
    built = build_services(store, settings, clock=clock, payments=gateway)
    yield built, gateway, clock
    await built.close()


async def test_a_claw_back_takes_the_purchase_lot_first_then_burn_order_then_debt(
    shop: tuple[Services, ModelGateway, TickingClock],
) -> None:
    s, gateway, _clock = shop
    older = await grant(s, "alice", 500)
    package = await s.purchases.add_package("Plus", 1100, 1000)
    started = (await s.purchases.start("alice", package.id)).purchase
    intent = started.stripe_payment_intent_id
    assert intent is not None
    for event in gateway.model.pay(intent):
        await s.purchases.handle(gateway.event(event))
    bought = next(x for x in (await lots_of(s, "alice")).values() if x.purchase_id)
    assert (bought.source, bought.amount, bought.purchase_id) == (
        LotSource.PURCHASE, 1100, started.id,
    )  # fmt: skip
    newer = await grant(s, "alice", 300)
    used = await s.credits.use("alice", 1500, "chat", "work")  # older 500, bought 1000
    assert await paid_by(s, used.entry.id) == {older: 500, bought.id: 1000}
    [opened, _withdrawn] = gateway.model.dispute(intent)
    assert await s.purchases.handle(gateway.event(opened)) == "clawed back 400, debt 700"
    entries = await s.credits.transactions("alice")
    clawback = next(e for e in entries if e.type == TransactionType.CLAWBACK)
    assert await paid_by(s, clawback.id) == {bought.id: 100, newer: 300}
    balance = await s.credits.balance("alice")
    assert (balance.balance, balance.debt) == (0, 700)
    await consistent(s, "alice")
    won = gateway.model.close_dispute(opened["data"]["object"]["id"], won=True)
    assert await s.purchases.handle(gateway.event(won[-1])) == "gave back 400, debt paid 700"
    entries = await s.credits.transactions("alice")
    given = next(e for e in entries if e.type == TransactionType.REINSTATEMENT)
    back = (await lots_of(s, "alice"))[given.id]
    assert (back.source, back.amount, back.remaining) == (LotSource.REINSTATEMENT, 400, 400)
    await consistent(s, "alice")


async def test_a_deleted_account_leaves_every_lot_at_zero(
    services: Services, clock: TickingClock
) -> None:
    s = services
    await grant(s, "u", 10, expires_at=clock.now() + MINUTE)
    await grant(s, "u", 20)
    await s.reservations.reserve("u", 5, "render")  # from the expiring lot
    clock.advance(2 * MINUTE)
    done = await s.users.delete("u")
    assert done.forfeited == 20  # the 10 expired first: 5 free now, 5 at the release
    assert await s.lots.of_user("u") == []  # pseudonymized with the rest
    report = await s.reconcile.run()
    assert report.ok, report.drifts
    assert report.users_checked == 1


async def test_cloud_sync_charges_burn_lots(services: Services, clock: TickingClock) -> None:
    s = services
    promo = await grant(s, "u", 20, expires_at=clock.now() + 60 * DAY)
    kept = await grant(s, "u", 100)
    activated = await s.sync.activate("u")
    assert activated.amount_charged == 30
    charges = [e for e in await s.credits.transactions("u") if e.app_id == "sync"]
    assert await paid_by(s, charges[0].id) == {promo: 20, kept: 10}
    clock.advance(32 * DAY)
    report = await s.sync.charge_due()
    assert report.charged == 1
    charges = [e for e in await s.credits.transactions("u") if e.app_id == "sync"]
    assert await paid_by(s, charges[0].id) == {kept: 30}  # newest first
    clock.advance(31 * DAY)
    assert (await s.sync.charge_due()).charged == 1
    assert (await lots_of(s, "u"))[kept].remaining == 30
    await consistent(s, "u")


async def test_gift_credits_leave_and_come_back_as_lots(services: Services) -> None:
    s = services
    funds = await grant(s, "alice", 50)
    gift = await s.gifts.create(Principal("alice", email="a@example.com"), 20)
    assert gift.reservation_transaction_id is not None
    assert await paid_by(s, gift.reservation_transaction_id) == {funds: 20}
    await s.gifts.cancel("alice", gift.id)
    returned = next(x for x in (await lots_of(s, "alice")).values() if x.source == LotSource.RETURN)
    assert (returned.amount, returned.remaining) == (20, 20)
    other = await s.gifts.create(Principal("alice", email="a@example.com"), 10)
    redeemed = await s.gifts.redeem(Principal("bob", email="b@example.com"), other.code)
    assert redeemed.credits_received == 10
    received = next(iter((await lots_of(s, "bob")).values()))
    assert (received.source, received.amount) == (LotSource.GIFT, 10)
    await consistent(s, "alice", "bob")


async def test_a_returned_gift_keeps_the_expiry_of_the_credits_that_paid_for_it(
    services: Services, clock: TickingClock
) -> None:
    s, ends = services, clock.now() + 10 * DAY
    await grant(s, "alice", 100, expires_at=ends, priority=20)
    gift = await s.gifts.create(Principal("alice", email="a@example.com"), 60)
    await s.gifts.cancel("alice", gift.id)
    returned = next(x for x in (await lots_of(s, "alice")).values() if x.source == LotSource.RETURN)
    assert (returned.remaining, returned.expires_at, returned.priority) == (60, ends, 20)
    clock.advance(11 * DAY)
    assert await s.lots.expire() == 2  # the grant's 40 and the returned 60: none kept
    assert (await s.credits.balance("alice")).balance == 0
    await consistent(s, "alice")


async def test_credits_of_mixed_lots_come_back_under_the_latest_expiry(
    services: Services, clock: TickingClock
) -> None:
    s = services
    await grant(s, "bob", 50, expires_at=clock.now() + 5 * DAY, priority=10)
    await grant(s, "bob", 50)  # never expires, the default priority
    gift = await s.gifts.create(Principal("bob", email="b@example.com"), 80)  # 50 + 30
    await s.gifts.cancel("bob", gift.id)
    returned = next(x for x in (await lots_of(s, "bob")).values() if x.source == LotSource.RETURN)
    assert (returned.remaining, returned.expires_at, returned.priority) == (
        80,
        None,
        DEFAULT_PRIORITY,
    )
    await consistent(s, "bob")


async def test_fifty_debits_of_ten_on_a_hundred_credits_in_five_lots(
    services: Services, clock: TickingClock
) -> None:
    """On PostgreSQL through group commit (the default there): many in one batch."""
    s = services
    for i in range(5):
        await grant(s, "hot", 20, expires_at=clock.now() + (i + 1) * DAY)
    results = await asyncio.gather(
        *(
            s.credits.use("hot", 10, "chat", f"call {i}", idempotency_key=f"k{i}")
            for i in range(50)
        ),
        return_exceptions=True,
    )
    unexpected = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, InsufficientCredits) for r in unexpected), unexpected
    assert len(results) - len(unexpected) == 10
    assert all(x.remaining == 0 for x in await s.lots.of_user("hot"))
    assert (await s.credits.balance("hot")).balance == 0
    await consistent(s, "hot")


async def test_fifty_debits_each_in_its_own_transaction_on_sql(
    sql_store: SqlStore, settings: Settings
) -> None:
    """The same race without group commit: fifty transactions contend for one balance
    row lock, each reading the lots only once it holds the lock."""
    off = Settings(MANA_CREDITS_HOME=settings.home, MANA_CREDITS_DEBIT_BATCHING=False)
    s = build_services(sql_store, off, clock=TickingClock())
    try:
        await test_fifty_debits_of_ten_on_a_hundred_credits_in_five_lots(s, TickingClock())
    finally:
        await s.close()


async def test_reconcile_names_lots_that_drift(store: Store, services: Services) -> None:
    s = services
    lot_id = await grant(s, "u", 30)
    used = await s.credits.use("u", 10, "chat", "work")
    assert await s.lots.allocations(used.entry.id) == [Allocation(lot_id, 10)]
    await plant_drift(store, lot_id, used.entry.id)
    drifts = {(d.user_id, d.check, d.expected, d.found) for d in (await s.reconcile.run()).drifts}
    assert drifts == {
        ("u", "lots remaining = balance + held", 20, 25),
        ("u", f"entry {used.entry.id}: lot allocations", 10, 0),
    }


async def plant_drift(store: Store, lot_id: str, entry_id: str) -> None:
    """Five credits back into the lot and the debit's allocation gone, behind the
    service's back: with raw SQL, or in the memory store's tables."""
    from mana_credits_adapters.memory import MemoryStore

    if isinstance(store, MemoryStore):
        from dataclasses import replace

        lot = store.state.lots[lot_id]
        store.state.lots[lot_id] = replace(lot, remaining=lot.remaining + 5)
        del store.state.allocations[entry_id]
        return
    import sqlalchemy as sa

    assert isinstance(store, SqlStore)
    async with store.engine.begin() as connection:
        await connection.execute(
            sa.text("UPDATE credits.credit_lots SET remaining = remaining + 5 WHERE id = :id")
            if store.dialect == "postgresql"
            else sa.text("UPDATE credit_lots SET remaining = remaining + 5 WHERE id = :id"),
            {"id": lot_id},
        )
        table = "credits.lot_allocations" if store.dialect == "postgresql" else "lot_allocations"
        await connection.execute(
            sa.text(f"DELETE FROM {table} WHERE entry_id = :id"),
            {"id": entry_id},
        )
