"""Credit lots' rules: the burn order, claw-back, expiry and notices (no store)."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mana_credits_core.errors import InvalidInput
from mana_credits_core.lots import (
    DEFAULT_PRIORITY,
    Allocation,
    Lot,
    LotSource,
    burn,
    claw_back,
    crossed_low,
    expiring,
    priority,
    to_notify,
    total,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def lot(
    lot_id: str,
    remaining: int,
    *,
    prio: int = DEFAULT_PRIORITY,
    expires: datetime | None = None,
    created: datetime = NOW - 10 * DAY,
    held: int = 0,
    source: LotSource = LotSource.GRANT,
) -> Lot:
    return Lot(lot_id, "u", source, remaining, remaining, prio, expires, created, held)


def test_burn_takes_lower_priority_first_then_soonest_expiry_then_oldest() -> None:
    lots = [
        lot("paid", 100, source=LotSource.PURCHASE),  # never expires: last of its priority
        lot("promo-late", 10, expires=NOW + 30 * DAY),
        lot("promo-soon", 10, expires=NOW + 3 * DAY),
        lot("first", 5, prio=10),  # an operator's priority beats any expiry
        lot("older", 10, created=NOW - 20 * DAY, expires=NOW + 30 * DAY),
    ]
    taken = burn(lots, 40, NOW)
    assert taken == [
        Allocation("first", 5),
        Allocation("promo-soon", 10),
        Allocation("older", 10),
        Allocation("promo-late", 10),
        Allocation("paid", 5),
    ]


def test_ties_are_broken_by_id_so_every_store_burns_the_same_lot() -> None:
    twins = [lot("b", 5), lot("a", 5)]
    assert burn(twins, 5, NOW) == [Allocation("a", 5)]


def test_burn_refuses_what_the_spendable_credits_do_not_cover() -> None:
    lots = [
        lot("ok", 10),
        lot("expired", 50, expires=NOW),  # expiry is inclusive: at expires_at it is gone
        lot("held", 20, held=15),
    ]
    assert burn(lots, 15, NOW) == [Allocation("held", 5), Allocation("ok", 10)]
    assert burn(lots, 16, NOW) is None
    with pytest.raises(ValueError, match="at least 1"):
        burn(lots, 0, NOW)


def test_any_burn_sums_to_its_amount_and_leaves_no_lot_negative() -> None:
    rng = random.Random(7)
    for _ in range(300):
        lots = [
            lot(
                f"l{i}",
                rng.randint(0, 30),
                prio=rng.choice((0, 50, 50, 100)),
                expires=rng.choice((None, NOW + rng.randint(1, 9) * DAY, NOW - DAY)),
                created=NOW - rng.randint(1, 9) * DAY,
            )
            for i in range(rng.randint(0, 8))
        ]
        free = sum(x.free for x in lots if not x.expired(NOW))
        amount = rng.randint(1, 120)
        taken = burn(lots, amount, NOW)
        if amount > free:
            assert taken is None
            continue
        assert taken is not None
        assert total(taken) == amount
        by_id = {x.id: x for x in lots}
        assert all(0 < a.amount <= by_id[a.lot_id].free for a in taken)
        assert len({a.lot_id for a in taken}) == len(taken)


def test_fifty_debits_of_ten_on_five_lots_of_twenty_exactly_ten_succeed() -> None:
    lots = {f"l{i}": lot(f"l{i}", 20, expires=NOW + (i + 1) * DAY) for i in range(5)}
    succeeded = 0
    for _ in range(50):
        taken = burn(lots.values(), 10, NOW)
        if taken is None:
            continue
        succeeded += 1
        for a in taken:
            x = lots[a.lot_id]
            lots[a.lot_id] = replace(x, remaining=x.remaining - a.amount)
    assert succeeded == 10
    assert all(x.remaining == 0 for x in lots.values())


def test_claw_back_takes_the_purchase_lot_first_and_reports_the_debt() -> None:
    lots = [
        lot("promo", 10, expires=NOW + DAY),
        lot("bought", 30, source=LotSource.PURCHASE),
        lot("other", 40, source=LotSource.PURCHASE, created=NOW - 30 * DAY),
    ]
    taken, debt = claw_back(lots, 50, NOW, first="bought")
    assert taken == [Allocation("bought", 30), Allocation("promo", 10), Allocation("other", 10)]
    assert debt == 0
    taken, debt = claw_back(lots, 100, NOW, first="bought")
    assert total(taken) == 80
    assert debt == 20  # already spent: owed


def test_expiry_takes_the_free_part_of_lots_past_their_date() -> None:
    lots = [
        lot("gone", 10, expires=NOW - DAY),
        lot("held", 10, expires=NOW - DAY, held=4),  # the hold expires at its release
        lot("now", 5, expires=NOW),
        lot("later", 5, expires=NOW + DAY),
        lot("never", 5),
    ]
    assert expiring(lots, NOW) == [
        Allocation("gone", 10),
        Allocation("held", 6),
        Allocation("now", 5),
    ]


def test_owners_are_told_seven_days_ahead() -> None:
    lots = [
        lot("in-3-days", 5, expires=NOW + 3 * DAY),
        lot("in-7-days", 5, expires=NOW + 7 * DAY),
        lot("in-8-days", 5, expires=NOW + 8 * DAY),
        lot("spent", 0, expires=NOW + 3 * DAY),
        lot("past", 5, expires=NOW),
    ]
    assert [x.id for x in to_notify(lots, NOW)] == ["in-3-days", "in-7-days"]


@pytest.mark.parametrize(
    ("before", "after", "crossed"),
    [(60, 40, True), (50, 49, True), (50, 50, False), (49, 10, False), (100, 60, False)],
)
def test_low_balance_is_told_once_per_crossing(before: int, after: int, crossed: bool) -> None:
    assert crossed_low(before, after, 50) is crossed


def test_priority_defaults_and_bounds() -> None:
    assert priority(None) == DEFAULT_PRIORITY
    assert [priority(p) for p in (0, 100)] == [0, 100]
    for bad in (-1, 101):
        with pytest.raises(InvalidInput) as raised:
            priority(bad)
        assert raised.value.field == "priority"


def test_the_burn_order_is_a_total_order() -> None:
    lots = [
        lot(f"l{p}{e}{c}", 1, prio=p, expires=exp, created=NOW - c * DAY)
        for (p, (e, exp), c) in itertools.product(
            (0, 50), enumerate((None, NOW + DAY, NOW + 2 * DAY)), (1, 2)
        )
    ]
    forward = burn(lots, len(lots), NOW)
    backward = burn(list(reversed(lots)), len(lots), NOW)
    assert forward == backward
