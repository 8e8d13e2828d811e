"""The reservation contract: hold, then commit or refund, exactly once."""

from __future__ import annotations

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
