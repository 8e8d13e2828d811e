"""The price list's arithmetic: credits as text, costs in milli-credits, accrual; and the
lot book's priced debits and commits (no store)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mana_credits_core.errors import InvalidInput
from mana_credits_core.ledger import Applied, Balance, Debit, Refused, Replayed
from mana_credits_core.lot_book import LotBook
from mana_credits_core.lots import DEFAULT_PRIORITY, Allocation, Lot, LotSource
from mana_credits_core.pricing import (
    MAX_PRICE_MILLI,
    SEED_PRICES,
    Priced,
    accrue,
    cost_milli,
    format_credits,
    parse_credits,
    plural,
    price_text,
    priced_at,
    unit_name,
    unit_text,
)
from mana_credits_core.reservations import CommitHold, Hold

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
CHAT = priced_at("ai_chat_ollama", 100, 1, 1)  # 0.1 credits a call


# Credits as text.


@pytest.mark.parametrize(
    ("text", "milli"),
    [("0.1", 100), ("5", 5000), ("0.001", 1), ("0.25", 250), ("12.345", 12345), (2, 2000),
     ("003", 3000), ("100000", MAX_PRICE_MILLI), ("0100000.000", MAX_PRICE_MILLI)],
)  # fmt: skip
def test_credits_parse_to_milli_credits(text: object, milli: int) -> None:
    assert parse_credits(text) == milli


@pytest.mark.parametrize(
    "value",
    [0.1, 1.0, "0.0001", "-1", "1e3", "", "0", "0.000", "1,5", ".5", "5.", "0x10", True,
     None, "100000.001", "\u0661", "\uff15", " 3", "3 ", "3\n", "1000000000", "9" * 5000],
)  # fmt: skip
def test_credits_that_are_no_price_are_refused_naming_the_field(value: object) -> None:
    # Among them an Arabic-Indic one and a full-width five (digits to `int`, not here).
    with pytest.raises(InvalidInput) as refused:
        parse_credits(value, "newPrice")
    assert refused.value.field == "newPrice"
    assert "newPrice" in refused.value.message
    assert len(refused.value.message) < 150  # a huge value is quoted cut short


def test_a_price_too_big_is_refused_as_out_of_range() -> None:
    with pytest.raises(InvalidInput, match=r"must be 0\.001\.\.100000 credits"):
        parse_credits("1000000000")


@pytest.mark.parametrize(
    ("unit", "text"),
    [("item", "items"), ("box", "boxes"), ("entry", "entries"), ("day", "days"),
     ("batch", "batches"), ("page", "pages"), ("pass", "passes"),
     ("analysis", "analyses")],
)  # fmt: skip
def test_units_are_counted_in_regular_plurals(unit: str, text: str) -> None:
    assert unit_text(unit, 2) == f"per 2 {text}"
    assert unit_text(unit, 1) == f"per {unit}"


@pytest.mark.parametrize("value", ["a b", "1", "item ", " item", "Item", "", "call", "x" * 33,
                                   "ítem", 5, None, "items", "boxes", "entries"])  # fmt: skip
def test_a_unit_is_one_lower_case_word(value: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        unit_name(value)
    assert refused.value.field == "unit"


@pytest.mark.parametrize("value", ["item", "box", "entry", "class", "bus", "analysis", "x"])
def test_singular_units_are_taken_those_read_as_plurals_refused(value: str) -> None:
    assert unit_name(value) == value
    with pytest.raises(InvalidInput, match=f"unit {plural(value)} reads as a plural;"):
        unit_name(plural(value))


def test_a_unit_stored_in_the_plural_is_not_made_plural_again() -> None:
    # Units were not checked for the singular before: "boxes" may be in a price list.
    assert unit_text("boxes", 10) == "per 10 boxes"
    assert price_text(300, "boxes", 10) == "0.3 credits per 10 boxes"


@pytest.mark.parametrize(
    ("milli", "unit", "size", "text"),
    [(1000, None, 1, "1 credit per call"), (100, None, 1, "0.1 credits per call"),
     (200, "item", 10, "0.2 credits per 10 items"), (30000, "month", 1, "30 credits per month"),
     (2000, "page", 3, "2 credits per 3 pages")],
)  # fmt: skip
def test_prices_read_as_people_say_them(milli: int, unit: str | None, size: int, text: str) -> None:
    assert price_text(milli, unit, size) == text


@pytest.mark.parametrize(
    ("milli", "text"),
    [(100, "0.1"), (5000, "5"), (1, "0.001"), (250, "0.25"), (12345, "12.345"), (0, "0"),
     (1010, "1.01"), (999, "0.999")],
)  # fmt: skip
def test_credits_format_in_the_fewest_decimals_and_parse_back(milli: int, text: str) -> None:
    assert format_credits(milli) == text
    if milli:
        assert parse_credits(text) == milli


# Costs.


def test_a_cost_per_unit_size_rounds_up_to_a_whole_milli_credit() -> None:
    assert cost_milli(200, 10, 10) == 200  # bulk_import: 0.2 per 10 items
    assert cost_milli(200, 15, 10) == 300
    assert cost_milli(200, 1, 10) == 20
    assert cost_milli(1, 1, 3) == 1  # a third of a milli-credit is one
    assert cost_milli(1, 3, 3) == 1
    assert cost_milli(1, 4, 3) == 2
    assert cost_milli(7, 1, 1000) == 1
    assert cost_milli(100, 7) == 700  # per call


def test_what_a_priced_debit_may_charge_at_most_is_its_cost_rounded_up() -> None:
    assert CHAT.most_credits == 1
    assert priced_at("x", 5000, 1, 1).most_credits == 5
    assert priced_at("x", 1001, 1, 1).most_credits == 2
    assert priced_at("bulk_import", 200, 10, 15).most_credits == 1
    assert priced_at("bulk_import", 200, 10, 500).most_credits == 10
    assert CHAT.with_quantity(25) == Priced("ai_chat_ollama", 25, 100, 1, 2500)


def test_accrue_charges_the_whole_credits_due_and_carries_the_rest() -> None:
    assert accrue(0, 100) == (0, 100)
    assert accrue(900, 100) == (1, 0)
    assert accrue(950, 100) == (1, 50)
    assert accrue(999, 1) == (1, 0)
    assert accrue(0, 5000) == (5, 0)
    assert accrue(300, 4750) == (5, 50)
    assert accrue(0, 999) == (0, 999)


@pytest.mark.parametrize("cost", [1, 99, 100, 999, 1000, 1001, 4999, 25_000, 123_457])
def test_accrue_never_charges_more_than_the_most_a_cost_may_charge(cost: int) -> None:
    priced = priced_at("x", cost, 1, 1)
    for before in range(1000):
        due, carried = accrue(before, cost)
        assert 0 <= carried < 1000
        assert due * 1000 + carried == before + cost  # nothing lost, nothing made up
        assert due <= priced.most_credits


def test_a_thousand_tenths_accrue_to_exactly_a_hundred_credits() -> None:
    accrued = charged = 0
    for _ in range(1000):
        due, accrued = accrue(accrued, 100)
        charged += due
    assert (charged, accrued) == (100, 0)


def test_the_seeded_list_is_well_formed() -> None:
    ops = [s.operation for s in SEED_PRICES]
    assert len(ops) == len(set(ops))
    assert all(1 <= s.price_milli <= MAX_PRICE_MILLI and s.unit_size >= 1 for s in SEED_PRICES)
    by_op = {s.operation: s for s in SEED_PRICES}
    assert (by_op["ai_chat_ollama"].price_milli, by_op["ai_chat_ollama"].unit) == (100, None)
    bulk = by_op["bulk_import"]
    assert (bulk.price_milli, bulk.unit, bulk.unit_size) == (200, "item", 10)


# The lot book's priced debits and commits.


def lot(lot_id: str, remaining: int) -> Lot:
    return Lot(
        id=lot_id,
        user_id="u",
        source=LotSource.GRANT,
        amount=remaining,
        remaining=remaining,
        priority=DEFAULT_PRIORITY,
        expires_at=None,
        created_at=NOW,
    )


def book(balance: int, accrued: int = 0) -> LotBook:
    lots = [lot("a", balance)] if balance else []
    return LotBook([Balance("u", balance, balance, 0, 0, accrued)], lots)


def priced_debit(priced: Priced, key: str | None = None, n: int = 0) -> Debit:
    return Debit(
        entry_id=f"e{n}-{key}",
        user_id="u",
        amount=priced.most_credits,
        app_id="chat",
        description="chat",
        metadata=None,
        idempotency_key=key,
        now=NOW,
        priced=priced,
    )


def test_a_priced_debit_below_a_credit_writes_an_entry_of_zero_and_burns_nothing() -> None:
    b = book(3)
    outcome = b.debit(priced_debit(CHAT, "k"))
    assert isinstance(outcome, Applied)
    assert (outcome.entry.amount, outcome.balance.balance, outcome.balance.accrued_milli) == (
        0,
        3,
        100,
    )
    assert outcome.entry.metadata == {
        "pricing": {
            "operation": "ai_chat_ollama",
            "quantity": 1,
            "priceMilli": 100,
            "unitSize": 1,
            "costMilli": 100,
            "accruedMilli": 100,
        }
    }
    assert b.writes.allocations == []
    assert "a" not in b.writes.lots  # no lot touched
    assert b.writes.usage == {("u", "chat", NOW.date()): (0, 1)}
    assert b.writes.operations == {("u", "ai_chat_ollama", NOW.date()): (1, 1, 100)}
    assert isinstance(b.debit(priced_debit(CHAT, "k", 1)), Replayed)
    assert b.balance("u") == Balance("u", 3, 3, 0, 0, 100)  # the replay accrued nothing


def test_the_tenth_tenth_charges_one_credit_from_the_lots() -> None:
    b = book(3, accrued=900)
    outcome = b.debit(priced_debit(CHAT))
    assert isinstance(outcome, Applied)
    assert (outcome.entry.amount, outcome.entry.balance_before, outcome.entry.balance_after) == (
        -1,
        3,
        2,
    )
    assert outcome.balance == Balance("u", 2, 3, 1, 0, 0)
    assert b.writes.allocations == [(outcome.entry.id, Allocation("a", 1))]
    assert b.writes.usage == {("u", "chat", NOW.date()): (1, 1)}


def test_a_priced_debit_short_of_the_credits_due_is_refused_and_accrues_nothing() -> None:
    b = book(0, accrued=950)
    assert b.debit(priced_debit(CHAT)) == Refused(0, 1)  # required: the credit due
    assert b.balance("u") == Balance("u", 0, 0, 0, 0, 950)
    assert not b.writes
    assert b.writes.operations == {}
    five = priced_at("ai_chat_gpt4", 5000, 1, 1)
    b = book(4, accrued=500)
    assert b.debit(priced_debit(five)) == Refused(4, 5)
    assert b.balance("u") == Balance("u", 4, 4, 0, 0, 500)


def test_a_debit_that_makes_only_a_fraction_due_succeeds_at_balance_zero() -> None:
    b = book(0)
    outcome = b.debit(priced_debit(CHAT))
    assert isinstance(outcome, Applied)
    assert (outcome.entry.amount, outcome.balance.balance, outcome.balance.accrued_milli) == (
        0,
        0,
        100,
    )


def test_a_priced_commit_charges_what_is_due_and_gives_the_rest_back() -> None:
    b = book(30, accrued=800)
    reserved = priced_at("bulk_import", 200, 10, 500)  # 10 credits at most
    held = b.hold(Hold("r", "u", reserved.most_credits, "import", "notes", NOW, reserved))
    assert held is not None
    assert held.balance == 20
    done = reserved.with_quantity(33)  # 660 milli-credits, with 800 accrued: 1 due
    entry = b.commit(
        held.reservation,
        CommitHold("r", "c", "import", NOW, priced=done),
        [a for _, a in b.writes.holds],
    )
    assert entry.amount == -1
    assert entry.metadata is not None
    assert entry.metadata["pricing"]["accruedMilli"] == 460
    assert entry.metadata["pricing"]["quantity"] == 33
    assert b.balance("u") == Balance("u", 29, 30, 1, 0, 460)
    assert b.writes.operations == {("u", "bulk_import", NOW.date()): (1, 33, 660)}
    assert b.writes.released == ["r"]
    assert [(x.remaining, x.held) for x in b.lots_of("u")] == [(29, 0)]


def test_a_commit_by_amount_keeps_the_accrual_and_releases_the_rest() -> None:
    b = book(30, accrued=700)
    reserved = priced_at("ai_research_deep", 25000, 1, 1)
    held = b.hold(Hold("r", "u", 25, "research", "research", NOW, reserved))
    assert held is not None
    entry = b.commit(
        held.reservation,
        CommitHold("r", "c", "done", NOW, amount=7),
        [a for _, a in b.writes.holds],
    )
    assert entry.amount == -7
    assert b.balance("u") == Balance("u", 23, 30, 7, 0, 700)
    assert b.writes.operations == {("u", "ai_research_deep", NOW.date()): (1, 1, 7000)}
    again = b.hold(Hold("r2", "u", 5, "x", "research", NOW))
    assert again is not None
    with pytest.raises(ValueError, match=r"0\.\.5 credits, not 6"):
        b.commit(
            again.reservation,
            CommitHold("r2", "c2", "x", NOW, amount=6),
            [a for r, a in b.writes.holds if r == "r2"],
        )
