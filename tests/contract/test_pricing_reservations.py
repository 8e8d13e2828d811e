"""Reservations by operation and partial commits on every store: a reservation holds
the whole credits its cost may make due, and its commit charges what is due with the
user's accrual (never more than held) or a smaller amount, giving the rest back in the
same step."""

from __future__ import annotations

import asyncio

import pytest

from mana_credits_core import (
    InvalidInput,
    ReservationNotPending,
    ReservationStatus,
    TransactionType,
)
from mana_credits_core.services import Services

from .test_pricing import entries_of, funded, usage_entries


async def accrue(services: Services, user: str, tenths: int) -> None:
    """Accrue `tenths` tenths of a credit (local-model chats) without charging any."""
    for _ in range(tenths):
        await services.credits.use_operation(user, "ai_chat_ollama")


async def test_a_reservation_by_operation_holds_its_cost_rounded_up(services: Services) -> None:
    await funded(services, "ann", 30)
    held = await services.reservations.reserve_operation("ann", "bulk_import", 55)  # 1.1
    assert held.reservation.amount == 2
    assert held.balance == 28
    assert held.reservation.priced is not None
    assert (held.reservation.priced.operation, held.reservation.priced.quantity) == (
        "bulk_import",
        55,
    )
    assert (held.reservation.app_id, held.reservation.reason) == ("notes", "Bulk import")
    deep = await services.reservations.reserve_operation("ann", "ai_research_deep", reason="why")
    assert (deep.reservation.amount, deep.balance, deep.reservation.reason) == (25, 3, "why")
    stored = await services.reservations.get(held.reservation.id)
    assert stored.priced == held.reservation.priced
    assert (await services.credits.balance("ann")).accrued_milli == 0  # holding accrues nothing


async def test_a_commit_charges_what_the_cost_makes_due_and_releases_the_rest(
    services: Services,
) -> None:
    await funded(services, "ann", 30)
    await accrue(services, "ann", 8)  # 0.8 accrued
    held = await services.reservations.reserve_operation("ann", "bulk_import", 500)  # 10 held
    assert held.balance == 20
    entry = await services.reservations.commit(held.reservation.id, quantity=33)
    # 33 items cost 0.66; with 0.8 accrued 1 credit is due and 0.46 carried.
    assert (entry.type, entry.amount) == (TransactionType.USAGE, -1)
    assert entry.balance_before - entry.balance_after == 1
    assert entry.metadata is not None
    assert entry.metadata["reservationId"] == held.reservation.id
    assert entry.metadata["pricing"] == {
        "operation": "bulk_import",
        "quantity": 33,
        "priceMilli": 200,
        "unitSize": 10,
        "costMilli": 660,
        "accruedMilli": 460,
    }
    balance = await services.credits.balance("ann")
    assert (balance.balance, balance.total_spent, balance.accrued_milli) == (29, 1, 460)
    done = await services.reservations.get(held.reservation.id)
    assert (done.status, done.charged, done.transaction_id) == (
        ReservationStatus.COMMITTED,
        1,
        entry.id,
    )
    usage = {u.operation: u for u in await services.credits.usage_by_operation()}
    assert (usage["bulk_import"].calls, usage["bulk_import"].quantity) == (1, 33)
    assert usage["bulk_import"].cost_milli == 660
    assert (await services.reconcile.run()).ok


async def test_a_commit_without_quantity_charges_the_units_reserved(services: Services) -> None:
    await funded(services, "ann", 10)
    await accrue(services, "ann", 5)
    held = await services.reservations.reserve_operation("ann", "bulk_import", 75)  # 1.5: 2 held
    entry = await services.reservations.commit(held.reservation.id)
    assert entry.amount == -2  # 0.5 + 1.5
    balance = await services.credits.balance("ann")
    assert (balance.balance, balance.accrued_milli) == (8, 0)


async def test_a_commit_may_charge_nothing_when_only_a_fraction_is_due(
    services: Services,
) -> None:
    await funded(services, "ann", 1)
    held = await services.reservations.reserve_operation("ann", "ai_chat_ollama")
    assert (held.reservation.amount, held.balance) == (1, 0)
    entry = await services.reservations.commit(held.reservation.id)
    assert entry.amount == 0
    balance = await services.credits.balance("ann")
    assert (balance.balance, balance.accrued_milli) == (1, 100)
    assert (await services.reservations.get(held.reservation.id)).charged == 0
    assert (await services.reconcile.run()).ok


@pytest.mark.parametrize("accrued", [0, 1, 5, 9])
async def test_the_commit_never_needs_more_than_was_held(services: Services, accrued: int) -> None:
    """Whatever was accrued, and whatever accrues between the hold and its commit, the
    whole credits due fit in the hold: the balance held is exactly the hold."""
    await funded(services, "ann", 0)
    await accrue(services, "ann", accrued)
    await services.credits.credit("ann", 2, TransactionType.GRANT, "funds")
    held = await services.reservations.reserve_operation("ann", "bulk_import", 55)  # 1.1: 2
    assert held.balance == 0
    entry = await services.reservations.commit(held.reservation.id)
    total = accrued * 100 + 1100
    assert entry.amount == -(total // 1000)
    balance = await services.credits.balance("ann")
    assert (balance.balance, balance.accrued_milli) == (2 - total // 1000, total % 1000)


async def test_the_commit_charges_the_price_held_not_a_later_one(services: Services) -> None:
    await funded(services, "ann", 50)
    held = await services.reservations.reserve_operation("ann", "ai_image_generation")  # 10
    await services.prices.set("ai_image_generation", "15", operator="ops")
    entry = await services.reservations.commit(held.reservation.id)
    assert entry.amount == -10
    assert entry.metadata is not None
    assert entry.metadata["pricing"]["priceMilli"] == 10_000
    later = await services.reservations.reserve_operation("ann", "ai_image_generation")
    assert later.reservation.amount == 15


async def test_a_commit_of_a_smaller_amount_gives_the_rest_back(services: Services) -> None:
    await funded(services, "ann", 100)
    await accrue(services, "ann", 3)
    deep = await services.reservations.reserve_operation("ann", "ai_research_deep")
    plain = await services.reservations.reserve("ann", 40, "render", app_id="images")
    assert plain.balance == 35
    first = await services.reservations.commit(deep.reservation.id, "short run", amount=7)
    second = await services.reservations.commit(plain.reservation.id, amount=1)
    assert (first.amount, first.description, second.amount) == (-7, "short run", -1)
    balance = await services.credits.balance("ann")
    # An amount is charged as given: the accrual stays as it was.
    assert (balance.balance, balance.total_spent, balance.accrued_milli) == (92, 8, 300)
    charged = [(await services.reservations.get(r)).charged for r in (deep.reservation.id,
               plain.reservation.id)]  # fmt: skip
    assert charged == [7, 1]
    assert (await services.reconcile.run()).ok


async def test_bad_commits_are_refused_and_change_nothing(services: Services) -> None:
    await funded(services, "ann", 100)
    by_operation = await services.reservations.reserve_operation("ann", "bulk_import", 100)  # 2
    by_amount = await services.reservations.reserve("ann", 10, "render")
    cases = [
        ("amount", by_operation.reservation.id, {"amount": 3}),
        ("amount", by_amount.reservation.id, {"amount": 11}),
        ("amount", by_operation.reservation.id, {"amount": 1, "quantity": 1}),
        ("amount", by_amount.reservation.id, {"amount": 0}),
        ("quantity", by_operation.reservation.id, {"quantity": 101}),
        ("quantity", by_operation.reservation.id, {"quantity": 0}),
        ("quantity", by_amount.reservation.id, {"quantity": 1}),
    ]
    for field, reservation_id, arguments in cases:
        with pytest.raises(InvalidInput) as refused:
            await services.reservations.commit(reservation_id, **arguments)  # type: ignore[arg-type]
        assert refused.value.field == field, arguments
    balance = await services.credits.balance("ann")
    assert (balance.balance, balance.total_spent) == (88, 0)
    for held in (by_operation, by_amount):
        assert (await services.reservations.get(held.reservation.id)).status == (
            ReservationStatus.PENDING
        )
    assert await services.reservations.refund(by_operation.reservation.id) == 90
    entry = await services.reservations.commit(by_amount.reservation.id, amount=10)
    assert entry.amount == -10
    assert len(await entries_of(services, "ann")) == 2
    assert (await services.reconcile.run()).ok


async def test_a_commit_racing_a_refund_has_exactly_one_winner(services: Services) -> None:
    await funded(services, "ann", 200)
    await accrue(services, "ann", 7)
    charged, accrued, commits = 0, 700, 0
    for round_ in range(12):
        held = await services.reservations.reserve_operation("ann", "bulk_import", 500)  # 10
        rid = held.reservation.id
        racers = [
            services.reservations.refund(rid),
            services.reservations.commit(rid, quantity=77),  # 1.54 credits
            services.reservations.commit(rid, amount=3),
        ]
        turn = round_ % 3  # each starts first in turn
        results = await asyncio.gather(*racers[turn:], *racers[:turn], return_exceptions=True)
        losers = [r for r in results if isinstance(r, ReservationNotPending)]
        assert len(losers) == 2, results
        done = await services.reservations.get(rid)
        if done.status == ReservationStatus.REFUNDED:
            continue
        assert done.status == ReservationStatus.COMMITTED
        (entry,) = [e for e in await entries_of(services, "ann") if e.id == done.transaction_id]
        assert done.charged == -entry.amount
        if entry.metadata and "pricing" in entry.metadata:
            accrued += 1540
            assert done.charged == accrued // 1000
            accrued %= 1000
        else:
            assert done.charged == 3
        charged += done.charged
        commits += 1
    balance = await services.credits.balance("ann")
    assert (balance.balance, balance.total_spent, balance.accrued_milli) == (
        200 - charged,
        charged,
        accrued,
    )
    assert len(usage_entries(await entries_of(services, "ann"))) == 7 + commits
    assert (await services.reconcile.run()).ok


async def test_a_partial_commits_entry_shows_the_balance_after_the_commit(
    services: Services,
) -> None:
    """A full commit's entry shows the spendable balance with the held credits (before)
    and without the charged ones (after); a partial commit gives the rest back in the
    same step, so the balance after it includes the rest."""
    await funded(services, "ann", 30)
    held = await services.reservations.reserve_operation("ann", "bulk_import", 500)  # 10
    entry = await services.reservations.commit(held.reservation.id, quantity=50)  # 1
    assert (await services.credits.balance("ann")).balance == 29
    assert (entry.balance_before, entry.balance_after) == (30, 29)
