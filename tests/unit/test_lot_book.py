"""The lot book: debits, holds, claw-backs and expiry decided over balances and lots,
and the writes a store makes for them (no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mana_credits_core.errors import BalanceNotFound
from mana_credits_core.ledger import (
    Applied,
    Balance,
    Credit,
    Debit,
    NoBalance,
    Refused,
    Replayed,
    TransactionType,
    completed_entry,
)
from mana_credits_core.lot_book import LotBook, LotsOutOfStep, expiry_key, held_expiry_key, lot_for
from mana_credits_core.lots import DEFAULT_PRIORITY, Allocation, Lot, LotSource, opening_lot
from mana_credits_core.reservations import CommitHold, Hold, ReleaseHold, ReservationStatus

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def lot(lot_id: str, remaining: int, *, expires: datetime | None = None, **extra: object) -> Lot:
    fields: dict[str, object] = {
        "id": lot_id,
        "user_id": "u",
        "source": LotSource.GRANT,
        "amount": remaining,
        "remaining": remaining,
        "priority": DEFAULT_PRIORITY,
        "expires_at": expires,
        "created_at": NOW - 10 * DAY,
    }
    return Lot(**(fields | extra))  # type: ignore[arg-type]


def debit(amount: int, key: str | None = None, **extra: object) -> Debit:
    fields: dict[str, object] = {
        "entry_id": f"e-{amount}-{key}",
        "user_id": "u",
        "amount": amount,
        "app_id": "chat",
        "description": "test",
        "metadata": None,
        "idempotency_key": key,
        "now": NOW,
    }
    return Debit(**(fields | extra))  # type: ignore[arg-type]


def book(balance: int, *lots: Lot, debt: int = 0) -> LotBook:
    return LotBook([Balance("u", balance, balance, 0, debt)], lots)


def test_a_debit_burns_lots_in_order_and_records_what_each_gave() -> None:
    b = book(30, lot("late", 10, expires=NOW + 9 * DAY), lot("soon", 10, expires=NOW + DAY),
             lot("never", 10))  # fmt: skip
    outcome = b.debit(debit(15, "k"))
    assert isinstance(outcome, Applied)
    assert outcome.balance.balance == 15
    assert b.writes.allocations == [
        ("e-15-k", Allocation("soon", 10)),
        ("e-15-k", Allocation("late", 5)),
    ]
    assert {x.id: x.remaining for x in b.writes.lots.values()} == {"soon": 0, "late": 5}
    assert b.writes.usage == {("u", "chat", NOW.date()): (15, 1)}
    assert isinstance(b.debit(debit(15, "k")), Replayed)  # the key is taken now
    assert b.debit(debit(16)) == Refused(15)
    assert isinstance(LotBook([], []).debit(debit(1)), NoBalance)


def test_a_lot_past_its_expiry_is_expired_before_the_debit_decides() -> None:
    b = book(30, lot("gone", 20, expires=NOW - DAY), lot("left", 10))
    assert b.debit(debit(11)) == Refused(10)  # 20 of the 30 had expired
    (expired,) = b.writes.entries
    assert (expired.type, expired.amount, expired.idempotency_key) == (
        TransactionType.EXPIRE,
        -20,
        expiry_key("gone"),
    )
    assert (expired.balance_before, expired.balance_after) == (30, 10)
    assert b.writes.lots["gone"].expired_at == NOW
    assert b.writes.allocations == [(expired.id, Allocation("gone", 20))]
    assert b.expire_due("u", NOW + DAY) == []  # once per lot


def test_holds_set_credits_aside_and_commit_or_release_them() -> None:
    b = book(20, lot("a", 5, expires=NOW + DAY), lot("b", 15))
    held = b.hold(Hold("r", "u", 8, "job", "chat", NOW))
    assert held is not None
    assert held.balance == 12
    assert b.writes.holds == [("r", Allocation("a", 5)), ("r", Allocation("b", 3))]
    assert (b.lots_of("u")[0].held, b.lots_of("u")[1].held) == (5, 3)
    assert b.hold(Hold("r2", "u", 13, "job", "chat", NOW)) is None
    entry = b.commit(
        held.reservation, CommitHold("r", "c", "done", NOW), [a for _, a in b.writes.holds]
    )
    assert entry.amount == -8
    assert [(x.remaining, x.held) for x in b.lots_of("u")] == [(0, 0), (12, 0)]
    assert b.writes.released == ["r"]


def test_a_release_gives_held_credits_back_and_expires_those_past_their_date() -> None:
    expiring = lot("promo", 10, expires=NOW + DAY)
    b = book(10, expiring)
    held = b.hold(Hold("r", "u", 4, "job", "chat", NOW))
    assert held is not None
    later = NOW + 2 * DAY
    assert [e.amount for e in b.expire_due("u", later)] == [-6]  # the held 4 stay
    after = b.release(
        held.reservation,
        ReleaseHold("r", ReservationStatus.EXPIRED, later),
        [Allocation("promo", 4)],
    )
    assert after.balance == 0
    lapsed = b.writes.entries[-1]
    assert (lapsed.type, lapsed.amount, lapsed.idempotency_key) == (
        TransactionType.EXPIRE,
        -4,
        held_expiry_key("r"),
    )
    assert (b.lots_of("u")[0].remaining, b.lots_of("u")[0].held) == (0, 0)


def test_a_claw_back_takes_the_purchase_lot_first_then_the_rest_then_owes() -> None:
    b = book(25, lot("promo", 10, expires=NOW + DAY), lot("paid", 15, purchase_id="p1"))
    entry, debt = b.claw_back(debit(30, type=TransactionType.CLAWBACK, purchase_id="p1"))
    assert entry is not None
    assert (entry.amount, debt) == (-25, 5)
    assert b.writes.allocations == [
        (entry.id, Allocation("paid", 15)),
        (entry.id, Allocation("promo", 10)),
    ]
    assert b.balance("u") == Balance("u", 0, 25, 25, 5)
    assert b.claw_back(debit(3, purchase_id="p1")) == (None, 3)


def test_debt_collection_and_forfeit_burn_in_order() -> None:
    b = book(20, lot("a", 12), lot("b", 8, expires=NOW + DAY), debt=5)
    paid = b.collect_debt(debit(1))
    assert paid is not None
    assert paid.amount == -5
    assert b.writes.allocations == [(paid.id, Allocation("b", 5))]
    gone = b.forfeit(debit(1, entry_id="f", type=TransactionType.FORFEIT))
    assert gone is not None
    assert gone.amount == -15
    assert all(x.remaining == 0 for x in b.lots_of("u"))
    assert b.forfeit(debit(1)) is None
    with pytest.raises(BalanceNotFound):
        LotBook([], []).forfeit(debit(1))


def test_lots_that_do_not_hold_the_balance_stop_everything() -> None:
    with pytest.raises(LotsOutOfStep):
        book(10, lot("a", 5)).debit(debit(8))
    with pytest.raises(LotsOutOfStep):
        book(2, lot("a", 5, expires=NOW - DAY)).debit(debit(1))  # would expire 5 of 2


def test_a_credit_makes_one_lot_of_its_entry() -> None:
    credit = Credit(
        "e1", "u", 40, TransactionType.PURCHASE, "payments", "buy", None, None, NOW,
        purchase_id="p1",
    )  # fmt: skip
    made = lot_for(credit, completed_entry(credit, 40, 0, 40))
    assert (made.id, made.entry_id, made.source, made.amount, made.purchase_id) == (
        "e1", "e1", LotSource.PURCHASE, 40, "p1",
    )  # fmt: skip
    assert (made.priority, made.expires_at, made.remaining) == (DEFAULT_PRIORITY, None, 40)
    gift_return = Credit(
        "e2", "u", 5, TransactionType.REFUND, "gifts", "back", None, None, NOW,
        lot_source=LotSource.RETURN,
    )  # fmt: skip
    assert gift_return.source == LotSource.RETURN
    opening = opening_lot("u", 30, 10, NOW)
    assert (opening.source, opening.held, opening.entry_id) == (LotSource.OPENING, 10, None)
    assert opening.id == opening_lot("u", 1, 0, NOW + DAY).id
