"""The reservation contract: hold, then commit or refund, exactly once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from mana_credits_adapters.clock import TickingClock
from mana_credits_core import (
    BalanceNotFound,
    InsufficientCredits,
    InvalidInput,
    ReservationNotFound,
    ReservationNotPending,
    ReservationStatus,
    TransactionType,
)
from mana_credits_core.services import Services


@pytest.fixture
async def funded(services: Services) -> Services:
    await services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
    return services


async def test_reserve_takes_credits_out_of_the_spendable_balance(funded: Services) -> None:
    held = await funded.reservations.reserve("alice", 40, "image batch", app_id="images")
    assert held.balance == 60
    assert held.reservation.status == ReservationStatus.PENDING
    balance = await funded.credits.balance("alice")
    assert (balance.balance, balance.total_spent) == (60, 0)
    with pytest.raises(InsufficientCredits) as refused:
        await funded.credits.use("alice", 61, "chat", "more than spendable")
    assert refused.value.available == 60


async def test_commit_writes_one_usage_entry(funded: Services) -> None:
    held = await funded.reservations.reserve("alice", 40, "image batch", app_id="images")
    entry = await funded.reservations.commit(held.reservation.id, "4 images")
    assert (entry.type, entry.amount, entry.app_id) == (TransactionType.USAGE, -40, "images")
    assert (entry.balance_before, entry.balance_after) == (100, 60)
    assert entry.description == "4 images"
    balance = await funded.credits.balance("alice")
    assert (balance.balance, balance.total_spent) == (60, 40)
    resolved = await funded.reservations.get(held.reservation.id)
    assert resolved.status == ReservationStatus.COMMITTED
    assert resolved.transaction_id == entry.id
    with pytest.raises(
        ReservationNotPending, match="Cannot commit reservation in status: committed"
    ):
        await funded.reservations.commit(held.reservation.id)
    with pytest.raises(
        ReservationNotPending, match="Cannot refund reservation in status: committed"
    ):
        await funded.reservations.refund(held.reservation.id)
    assert (await funded.credits.balance("alice")).balance == 60
    assert (await funded.reconcile.run()).ok


async def test_commit_without_description_uses_the_reason(funded: Services) -> None:
    held = await funded.reservations.reserve("alice", 5, "research run")
    entry = await funded.reservations.commit(held.reservation.id)
    assert entry.description == "research run"


async def test_refund_returns_the_held_credits_once(funded: Services) -> None:
    held = await funded.reservations.reserve("alice", 40, "job")
    assert await funded.reservations.refund(held.reservation.id) == 100
    with pytest.raises(ReservationNotPending, match="status: refunded"):
        await funded.reservations.refund(held.reservation.id)
    with pytest.raises(ReservationNotPending):
        await funded.reservations.commit(held.reservation.id)
    assert (await funded.credits.balance("alice")).balance == 100
    assert len(await funded.credits.transactions("alice")) == 1
    assert (await funded.reconcile.run()).ok


async def test_reserve_that_does_not_fit_changes_nothing(funded: Services) -> None:
    with pytest.raises(InsufficientCredits) as refused:
        await funded.reservations.reserve("alice", 101, "too big")
    assert (refused.value.required, refused.value.available) == (101, 100)
    assert (await funded.credits.balance("alice")).balance == 100
    with pytest.raises(BalanceNotFound):
        await funded.reservations.reserve("ghost", 1, "no balance")


async def test_unknown_reservations_are_not_found(funded: Services) -> None:
    with pytest.raises(ReservationNotFound):
        await funded.reservations.commit("00000000-0000-0000-0000-000000000000")
    with pytest.raises(ReservationNotFound):
        await funded.reservations.refund("not-even-a-uuid")


@pytest.mark.parametrize("reason", ["", "x" * 201, "ctl\x07char"])
async def test_bad_reasons_are_invalid(funded: Services, reason: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        await funded.reservations.reserve("alice", 1, reason)
    assert bad.value.field == "reason"


async def test_expired_reservations_are_released_by_the_sweep(
    funded: Services, clock: TickingClock
) -> None:
    old = await funded.reservations.reserve("alice", 30, "stuck job")
    clock.advance(funded.reservations.ttl - timedelta(seconds=1))
    fresh = await funded.reservations.reserve("alice", 20, "fresh job")
    clock.advance(timedelta(seconds=2))
    assert await funded.reservations.release_expired() == 1
    assert await funded.reservations.release_expired() == 0
    assert (await funded.reservations.get(old.reservation.id)).status == ReservationStatus.EXPIRED
    assert (await funded.reservations.get(fresh.reservation.id)).status == ReservationStatus.PENDING
    assert (await funded.credits.balance("alice")).balance == 80
    with pytest.raises(ReservationNotPending, match="status: expired"):
        await funded.reservations.commit(old.reservation.id)
    assert (await funded.reconcile.run()).ok


# The time-to-live decides, not the sweep's timing: a reservation held longer than it
# is expired whether or not the sweep has run yet.

TTL = timedelta(seconds=2)


@pytest.fixture
def short_ttl(funded: Services) -> Services:
    funded.reservations.ttl = TTL
    return funded


async def test_commit_past_the_ttl_before_the_sweep_expires_the_hold(
    short_ttl: Services, clock: TickingClock
) -> None:
    held = await short_ttl.reservations.reserve("alice", 30, "slow job", app_id="images")
    clock.advance(timedelta(seconds=5))
    with pytest.raises(
        ReservationNotPending, match=r"^Cannot commit reservation in status: expired$"
    ) as refused:
        await short_ttl.reservations.commit(held.reservation.id, "too late")
    assert refused.value.status == ReservationStatus.EXPIRED
    expired = await short_ttl.reservations.get(held.reservation.id)
    assert (expired.status, expired.transaction_id) == (ReservationStatus.EXPIRED, None)
    balance = await short_ttl.credits.balance("alice")
    assert (balance.balance, balance.total_spent) == (100, 0)
    assert [e.type for e in await short_ttl.credits.transactions("alice")] == [
        TransactionType.GRANT
    ]
    assert await short_ttl.credits.usage_report(days=1) == []
    # Released once: the sweep finds nothing, a retry gets the same answer.
    assert await short_ttl.reservations.release_expired() == 0
    with pytest.raises(ReservationNotPending, match="status: expired"):
        await short_ttl.reservations.commit(held.reservation.id)
    assert (await short_ttl.credits.balance("alice")).balance == 100
    assert (await short_ttl.reconcile.run()).ok


async def test_refund_past_the_ttl_answers_expired_and_gives_the_credits_back_once(
    short_ttl: Services, clock: TickingClock
) -> None:
    held = await short_ttl.reservations.reserve("alice", 30, "slow job")
    clock.advance(timedelta(seconds=5))
    with pytest.raises(
        ReservationNotPending, match=r"^Cannot refund reservation in status: expired$"
    ):
        await short_ttl.reservations.refund(held.reservation.id)
    assert (await short_ttl.reservations.get(held.reservation.id)).status == (
        ReservationStatus.EXPIRED
    )
    assert (await short_ttl.credits.balance("alice")).balance == 100
    with pytest.raises(ReservationNotPending, match="status: expired"):
        await short_ttl.reservations.refund(held.reservation.id)
    assert await short_ttl.reservations.release_expired() == 0
    assert (await short_ttl.credits.balance("alice")).balance == 100
    assert (await short_ttl.reconcile.run()).ok


async def test_within_the_ttl_commit_and_refund_still_resolve(
    short_ttl: Services, clock: TickingClock
) -> None:
    committed = await short_ttl.reservations.reserve("alice", 30, "job")
    refunded = await short_ttl.reservations.reserve("alice", 20, "job")
    clock.advance(TTL - timedelta(milliseconds=10))
    entry = await short_ttl.reservations.commit(committed.reservation.id)
    assert entry.amount == -30
    assert await short_ttl.reservations.refund(refunded.reservation.id) == 70
    assert (await short_ttl.reconcile.run()).ok


async def test_commits_and_refunds_past_the_ttl_racing_the_sweep_release_each_hold_once(
    short_ttl: Services, clock: TickingClock
) -> None:
    holds = [await short_ttl.reservations.reserve("alice", 3, f"job {i}") for i in range(20)]
    assert (await short_ttl.credits.balance("alice")).balance == 40
    clock.advance(timedelta(seconds=5))
    ids = [h.reservation.id for h in holds]
    results = await asyncio.gather(
        short_ttl.reservations.release_expired(batch_size=7),
        *(
            short_ttl.reservations.commit(rid) if i % 2 else short_ttl.reservations.refund(rid)
            for i, rid in enumerate(ids)
        ),
        short_ttl.reservations.release_expired(batch_size=3),
        return_exceptions=True,
    )
    swept = [r for r in (results[0], results[-1]) if isinstance(r, int)]
    answers = results[1:-1]
    assert len(swept) == 2
    assert all(
        isinstance(a, ReservationNotPending) and a.status == ReservationStatus.EXPIRED
        for a in answers
    ), answers
    for rid in ids:
        assert (await short_ttl.reservations.get(rid)).status == ReservationStatus.EXPIRED
    balance = await short_ttl.credits.balance("alice")
    assert (balance.balance, balance.total_spent) == (100, 0)
    assert len(await short_ttl.credits.transactions("alice")) == 1
    assert (await short_ttl.reconcile.run()).ok
