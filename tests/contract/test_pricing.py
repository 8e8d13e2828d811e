"""Debits by operation of the price list: costs below a credit accrue per user, across
apps, and are charged in whole credits, exactly (docs/pricing.md).

Every store runs these; on PostgreSQL the debits go through group commit, the default
debit path there.
"""

from __future__ import annotations

import pytest

from mana_credits_core import (
    BalanceNotFound,
    IdempotencyKeyReused,
    InsufficientCredits,
    InvalidInput,
    TransactionType,
)
from mana_credits_core.ledger import LedgerEntry
from mana_credits_core.pricing import MILLI, SEED_PRICES, cost_milli
from mana_credits_core.services import LedgerResult, Services

SEEDED = {s.operation: s for s in SEED_PRICES}


async def entries_of(services: Services, user: str) -> list[LedgerEntry]:
    """Every entry of `user`, oldest first (however many pages)."""
    found: list[LedgerEntry] = []
    cursor: str | None = None
    while True:
        page = await services.credits.transactions_page(user, limit=100, cursor=cursor)
        found += page.entries
        if page.next_cursor is None:
            return found[::-1]
        cursor = page.next_cursor


def usage_entries(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    return [e for e in entries if e.type == TransactionType.USAGE]


async def funded(services: Services, user: str, credits: int) -> None:
    if credits:
        await services.credits.credit(user, credits, TransactionType.GRANT, "funds")
    else:
        await services.credits.init_balance(user)


async def test_a_thousand_local_chats_cost_exactly_a_hundred_credits(services: Services) -> None:
    await funded(services, "ann", 150)
    accrued = []
    for _ in range(1000):
        result = await services.credits.use_operation("ann", "ai_chat_ollama")
        assert result.balance is not None
        accrued.append(result.balance.accrued_milli)
    assert accrued[:11] == [100, 200, 300, 400, 500, 600, 700, 800, 900, 0, 100]
    balance = await services.credits.balance("ann")
    assert (balance.balance, balance.total_spent, balance.accrued_milli) == (50, 100, 0)
    used = usage_entries(await entries_of(services, "ann"))
    assert len(used) == 1000
    assert sum(e.amount for e in used) == -100
    # Every tenth call charges the credit the ten made due; the others charge nothing.
    assert [i for i, e in enumerate(used) if e.amount] == list(range(9, 1000, 10))
    assert {e.amount for e in used} == {0, -1}
    assert {e.app_id for e in used} == {"chat"}
    assert all(e.metadata and e.metadata["pricing"]["costMilli"] == 100 for e in used)
    (usage,) = await services.credits.usage_by_operation()
    assert (usage.operation, usage.calls, usage.quantity, usage.cost_milli) == (
        "ai_chat_ollama",
        1000,
        1000,
        100_000,
    )
    (per_app,) = await services.credits.usage_report(days=1)
    assert (per_app.app_id, per_app.credits_used, per_app.operations) == ("chat", 100, 1000)
    assert (await services.reconcile.run()).ok


async def test_bulk_imports_of_odd_sizes_charge_the_exact_sum(services: Services) -> None:
    await funded(services, "bo", 100)
    sizes = [1, 3, 7, 15, 9, 11, 33, 1, 99, 5, 17, 21, 13, 3, 1, 250, 77]
    total = 0
    for size in sizes:
        result = await services.credits.use_operation("bo", "bulk_import", size)
        total += 20 * size  # 0.2 credits per 10 items: 0.02 (20 milli-credits) an item
        assert result.entry.metadata is not None
        record = result.entry.metadata["pricing"]
        assert record == {
            "operation": "bulk_import",
            "quantity": size,
            "priceMilli": 200,
            "unitSize": 10,
            "costMilli": 20 * size,
            "accruedMilli": total % MILLI,
        }
    balance = await services.credits.balance("bo")
    assert total == 11_320
    assert (balance.balance, balance.total_spent, balance.accrued_milli) == (89, 11, 320)
    (usage,) = await services.credits.usage_by_operation(operation="bulk_import")
    assert (usage.calls, usage.quantity, usage.cost_milli) == (len(sizes), sum(sizes), total)
    assert (await services.reconcile.run()).ok


async def test_a_price_below_a_milli_credit_per_unit_rounds_up_per_debit(
    services: Services,
) -> None:
    """0.001 credits per 3 tokens: one token costs a whole milli-credit (never 0), so a
    thousand single-token debits cost one credit, not a third."""
    await services.prices.set(
        "ai_tokens", "0.001", operator="ops", app_id="chat", name="Tokens", unit="token",
        unit_size=3,
    )  # fmt: skip
    await funded(services, "cy", 5)
    for _ in range(1000):
        await services.credits.use_operation("cy", "ai_tokens")
    balance = await services.credits.balance("cy")
    assert (balance.balance, balance.accrued_milli) == (4, 0)
    result = await services.credits.use_operation("cy", "ai_tokens", 3000)  # exactly 1 credit
    assert (result.entry.amount, result.entry.metadata and result.entry.metadata["pricing"]) == (
        -1,
        {
            "operation": "ai_tokens",
            "quantity": 3000,
            "priceMilli": 1,
            "unitSize": 3,
            "costMilli": 1000,
            "accruedMilli": 0,
        },
    )


MIX = [
    ("ai_chat_ollama", None),
    ("ai_summary", None),
    ("bulk_import", 7),
    ("ai_chat_ollama", None),
    ("ai_card_generation", None),
    ("ai_summary", None),
    ("bulk_import", 33),
    ("ai_tag", None),
    ("ai_chat_ollama", None),
    ("ai_summary", None),
    ("ai_tag", None),
    ("bulk_import", 1),
    ("ai_chat_gemini", None),
    ("ai_tag", None),
    ("ai_chat_ollama", None),
]


async def test_costs_accrue_per_user_across_apps(services: Services) -> None:
    """A user cannot dodge the fraction by spreading calls over apps: what is charged is
    the sum of all costs in whole credits, the remainder is on the balance."""
    await services.prices.set(
        "ai_summary", "0.35", operator="ops", app_id="notes", name="Summary"
    )  # fmt: skip
    await services.prices.set("ai_tag", "0.45", operator="ops", app_id="todo", name="Tags")
    prices = {p.operation: p for p in await services.prices.list()}
    await funded(services, "dee", 20)
    cost_by_app: dict[str, int] = {}
    total = charged = 0
    for operation, quantity in MIX:
        price = prices[operation]
        cost = cost_milli(price.price_milli, quantity or 1, price.unit_size)
        result = await services.credits.use_operation("dee", operation, quantity)
        assert result.entry.app_id == price.app_id
        total += cost
        charged -= result.entry.amount
        # At every step: whole credits of the running total charged, the rest accrued.
        assert charged == total // MILLI
        assert result.balance is not None
        assert result.balance.accrued_milli == total % MILLI
        cost_by_app[price.app_id] = cost_by_app.get(price.app_id, 0) + cost
    assert total == 7_620
    # Accrued per app, the same calls would have charged less: the rule is per user.
    assert sum(c // MILLI for c in cost_by_app.values()) < total // MILLI
    balance = await services.credits.balance("dee")
    assert (balance.balance, balance.total_spent, balance.accrued_milli) == (13, 7, 620)
    usage = await services.credits.usage_by_operation()
    assert sum(u.cost_milli for u in usage) == total
    assert {u.operation: u.calls for u in usage} == {
        "ai_chat_ollama": 4, "ai_summary": 3, "bulk_import": 3, "ai_card_generation": 1,
        "ai_tag": 3, "ai_chat_gemini": 1,
    }  # fmt: skip
    assert sum(u.credits_used for u in await services.credits.usage_report(days=1)) == 7
    assert (await services.reconcile.run()).ok


async def test_each_users_accrual_is_their_own(services: Services) -> None:
    await funded(services, "ann", 10)
    await funded(services, "bo", 10)
    for _ in range(6):
        await services.credits.use_operation("ann", "ai_chat_ollama")
        await services.credits.use_operation("bo", "ai_chat_ollama")
    ann, bo = await services.credits.balance("ann"), await services.credits.balance("bo")
    assert (ann.balance, ann.accrued_milli, bo.balance, bo.accrued_milli) == (10, 600, 10, 600)


async def test_a_replay_returns_the_original_and_accrues_nothing(services: Services) -> None:
    await funded(services, "ann", 10)
    for _ in range(8):
        await services.credits.use_operation("ann", "ai_chat_ollama")
    first = await services.credits.use_operation("ann", "ai_chat_ollama", idempotency_key="k9")
    second = await services.credits.use_operation("ann", "ai_chat_ollama", idempotency_key="k10")
    assert (first.entry.amount, second.entry.amount) == (0, -1)
    for _ in range(3):
        again = await services.credits.use_operation("ann", "ai_chat_ollama", idempotency_key="k10")
        assert (again.replayed, again.entry.id, again.entry.amount) == (True, second.entry.id, -1)
        assert again.entry.metadata == second.entry.metadata
        again = await services.credits.use_operation("ann", "ai_chat_ollama", idempotency_key="k9")
        assert (again.replayed, again.entry.id) == (True, first.entry.id)
    balance = await services.credits.balance("ann")
    assert (balance.balance, balance.accrued_milli) == (9, 0)
    assert len(usage_entries(await entries_of(services, "ann"))) == 10
    (usage,) = await services.credits.usage_by_operation()
    assert (usage.calls, usage.cost_milli) == (10, 1000)
    (per_app,) = await services.credits.usage_report(days=1)
    assert (per_app.credits_used, per_app.operations) == (1, 10)


async def test_a_key_reused_for_another_operation_or_quantity_is_refused(
    services: Services,
) -> None:
    await funded(services, "ann", 10)
    await services.credits.use_operation("ann", "bulk_import", 15, idempotency_key="imp")
    before = await services.credits.balance("ann")
    with pytest.raises(IdempotencyKeyReused) as other_quantity:
        await services.credits.use_operation("ann", "bulk_import", 16, idempotency_key="imp")
    assert other_quantity.value.details["differs"] == ["quantity"]
    with pytest.raises(IdempotencyKeyReused) as other_operation:
        await services.credits.use_operation("ann", "pdf_export", idempotency_key="imp")
    assert "operation" in other_operation.value.details["differs"]
    with pytest.raises(IdempotencyKeyReused) as plain:  # the key of a priced debit, unpriced
        await services.credits.use("ann", 1, "notes", "Bulk import", idempotency_key="imp")
    assert plain.value.details["differs"] == ["operation"]
    await services.credits.use("ann", 1, "notes", "plain", idempotency_key="amount")
    with pytest.raises(IdempotencyKeyReused) as priced:  # an amount's key, by operation
        await services.credits.use_operation("ann", "pdf_export", idempotency_key="amount")
    assert priced.value.details["differs"] == ["operation"]
    after = await services.credits.balance("ann")
    assert (after.balance, after.accrued_milli) == (before.balance - 1, before.accrued_milli)
    assert len(await entries_of(services, "ann")) == 3


async def test_a_replay_after_a_price_change_still_answers_the_original(
    services: Services,
) -> None:
    await funded(services, "ann", 10)
    first = await services.credits.use_operation("ann", "ai_chat_ollama", idempotency_key="k")
    await services.prices.set("ai_chat_ollama", "0.5", operator="ops")
    again = await services.credits.use_operation("ann", "ai_chat_ollama", idempotency_key="k")
    assert (again.replayed, again.entry.id) == (True, first.entry.id)
    assert again.entry.metadata == first.entry.metadata
    assert (await services.credits.balance("ann")).accrued_milli == 100


async def test_a_retry_after_the_operation_was_retired_or_moved_answers_the_original(
    services: Services,
) -> None:
    """A client retrying a charged request (say after a timeout) must learn it was
    charged, whatever the price list became in between."""
    await funded(services, "ann", 10)
    qwen = await services.credits.use_operation("ann", "ai_chat_qwen", idempotency_key="q")
    chat = await services.credits.use_operation(
        "ann", "ai_chat_gemini", app_id="chat", idempotency_key="g"
    )
    await services.prices.retire("ai_chat_qwen", operator="ops")
    await services.prices.set(
        "ai_chat_gemini", "2", app_id="research", name="Gemini", operator="ops"
    )
    again = await services.credits.use_operation("ann", "ai_chat_qwen", idempotency_key="q")
    assert (again.replayed, again.entry.id, again.entry.amount) == (True, qwen.entry.id, -2)
    again = await services.credits.use_operation(
        "ann", "ai_chat_gemini", app_id="chat", idempotency_key="g"
    )
    assert (again.replayed, again.entry.id) == (True, chat.entry.id)
    # Without the app and description, which the price list fills in: the original too.
    again = await services.credits.use_operation("ann", "ai_chat_gemini", idempotency_key="g")
    assert (again.replayed, again.entry.description) == (True, "Chat (Gemini)")
    # A retry that asks for something else is still another request.
    with pytest.raises(IdempotencyKeyReused) as other:
        await services.credits.use_operation("ann", "ai_chat_qwen", 2, idempotency_key="q")
    assert other.value.details["differs"] == ["quantity"]
    with pytest.raises(InvalidInput, match="retired"):  # a new key: refused as before
        await services.credits.use_operation("ann", "ai_chat_qwen", idempotency_key="q2")
    with pytest.raises(InvalidInput, match="belongs to app research"):
        await services.credits.use_operation(
            "ann", "ai_chat_gemini", app_id="chat", idempotency_key="g2"
        )
    assert (await services.credits.balance("ann")).balance == 6
    assert len(usage_entries(await entries_of(services, "ann"))) == 2


async def test_short_of_the_credit_due_is_402_and_nothing_accrues(services: Services) -> None:
    """With a balance of 0, debits that only add a fraction succeed (nothing is due);
    the one that makes a whole credit due is refused and changes nothing."""
    await funded(services, "ann", 0)
    for n in range(1, 10):
        result = await services.credits.use_operation("ann", "ai_chat_ollama")
        assert result.entry.amount == 0
        assert result.balance is not None
        assert (result.balance.balance, result.balance.accrued_milli) == (0, 100 * n)
    for _ in range(2):
        with pytest.raises(InsufficientCredits) as refused:
            await services.credits.use_operation("ann", "ai_chat_ollama", idempotency_key="t")
        assert (refused.value.required, refused.value.available) == (1, 0)
    balance = await services.credits.balance("ann")
    assert (balance.balance, balance.accrued_milli) == (0, 900)
    (usage,) = await services.credits.usage_by_operation()
    assert usage.calls == 9  # the refused calls are not usage
    await services.credits.credit("ann", 1, TransactionType.GRANT, "top-up")
    # The refused key was never taken: the same request now goes through.
    result = await services.credits.use_operation("ann", "ai_chat_ollama", idempotency_key="t")
    assert (result.replayed, result.entry.amount) == (False, -1)
    balance = await services.credits.balance("ann")
    assert (balance.balance, balance.accrued_milli, balance.total_spent) == (0, 0, 1)
    assert (await services.reconcile.run()).ok


async def test_what_is_required_is_the_credits_due_with_the_accrual(services: Services) -> None:
    await funded(services, "bo", 0)
    for _ in range(5):
        await services.credits.use_operation("bo", "ai_chat_ollama")  # 0.5 accrued
    # 70 items cost 1.4 credits: with 0.5 accrued, 1 credit is due (0.9 carried).
    with pytest.raises(InsufficientCredits) as refused:
        await services.credits.use_operation("bo", "bulk_import", 70)
    assert (refused.value.required, refused.value.available) == (1, 0)
    await services.credits.credit("bo", 1, TransactionType.GRANT, "top-up")
    result = await services.credits.use_operation("bo", "bulk_import", 70)
    assert result.entry.amount == -1
    assert result.balance is not None
    assert (result.balance.balance, result.balance.accrued_milli) == (0, 900)
    await services.credits.credit("bo", 4, TransactionType.GRANT, "top-up")
    with pytest.raises(InsufficientCredits) as refused:  # 5 + 0.9 accrued: 5 due of 4
        await services.credits.use_operation("bo", "ai_chat_gpt4")
    assert (refused.value.required, refused.value.available) == (5, 4)
    assert (await services.credits.balance("bo")).accrued_milli == 900


async def test_a_user_without_a_balance_is_not_found(services: Services) -> None:
    with pytest.raises(BalanceNotFound):
        await services.credits.use_operation("nobody", "ai_chat_ollama")


async def test_each_debit_is_priced_at_its_time(services: Services) -> None:
    await funded(services, "ann", 10)
    steps = [("0.1", 100), ("0.25", 250), ("0.05", 50), ("1.2", 1200), ("0.1", 100)]
    results: list[LedgerResult] = []
    for text, milli in steps:
        _, change = await services.prices.set(
            "ai_chat_ollama", text, operator="ops", reason=f"now {text}"
        )
        assert (change is None) == (text == "0.1" and not results)  # the seeded price
        results.append(await services.credits.use_operation("ann", "ai_chat_ollama"))
        assert results[-1].entry.metadata is not None
        assert results[-1].entry.metadata["pricing"]["priceMilli"] == milli
    assert [r.entry.amount for r in results] == [0, 0, 0, -1, 0]
    assert [r.balance and r.balance.accrued_milli for r in results] == [100, 350, 400, 600, 700]
    records = [
        (e.metadata or {})["pricing"] for e in usage_entries(await entries_of(services, "ann"))
    ]
    assert [(r["priceMilli"], r["costMilli"]) for r in records] == [
        (100, 100), (250, 250), (50, 50), (1200, 1200), (100, 100),
    ]  # fmt: skip
    history = await services.prices.history("ai_chat_ollama")
    assert [(c.old_price_milli, c.new_price_milli) for c in history] == [
        (1200, 100), (50, 1200), (250, 50), (100, 250),
    ]  # fmt: skip
    (usage,) = await services.credits.usage_by_operation()
    assert (usage.calls, usage.cost_milli) == (5, 1700)


@pytest.mark.parametrize("operation", ["no_such_operation", "ai_chat_ollama"])
async def test_unknown_and_retired_operations_are_refused_naming_them(
    services: Services, operation: str
) -> None:
    await funded(services, "ann", 10)
    await services.credits.use_operation("ann", "ai_chat_ollama")
    await services.prices.retire("ai_chat_ollama", operator="ops", reason="model gone")
    before = await services.credits.balance("ann")
    for attempt in (
        services.credits.use_operation("ann", operation),
        services.credits.use_operation("ann", operation, idempotency_key="x"),
        services.reservations.reserve_operation("ann", operation),
    ):
        with pytest.raises(InvalidInput) as refused:
            await attempt
        assert refused.value.field == "operation"
        assert operation in refused.value.message
    assert await services.credits.balance("ann") == before
    assert len(await entries_of(services, "ann")) == 2
    # Retired, it still prices the records of the entries that used it.
    retired = await services.prices.get("ai_chat_ollama")
    assert (retired.active, retired.price_milli) == (False, 100)
    await services.prices.set("ai_chat_ollama", "0.1", operator="ops")  # priced again
    await services.credits.use_operation("ann", "ai_chat_ollama")
    assert (await services.credits.balance("ann")).accrued_milli == 200


async def test_bad_priced_debits_are_refused_and_change_nothing(services: Services) -> None:
    await funded(services, "ann", 10)
    cases: list[tuple[str, dict[str, object]]] = [
        ("appId", {"operation": "ai_chat_ollama", "app_id": "notes"}),
        ("metadata", {"operation": "ai_chat_ollama", "metadata": {"pricing": {"costMilli": 0}}}),
        ("quantity", {"operation": "bulk_import", "quantity": 0}),
        ("quantity", {"operation": "bulk_import", "quantity": 1_000_001}),
        ("operation", {"operation": "Not An Id"}),
    ]
    for field, arguments in cases:
        with pytest.raises(InvalidInput) as refused:
            await services.credits.use_operation("ann", **arguments)  # type: ignore[arg-type]
        assert refused.value.field == field, arguments
    with pytest.raises(InvalidInput) as refused:
        await services.reservations.reserve_operation("ann", "ai_chat_ollama", app_id="notes")
    assert refused.value.field == "appId"
    balance = await services.credits.balance("ann")
    assert (balance.balance, balance.accrued_milli) == (10, 0)
    assert len(await entries_of(services, "ann")) == 1
    # The operation's own app, given, is fine.
    result = await services.credits.use_operation("ann", "ai_chat_ollama", app_id="chat")
    assert result.entry.app_id == "chat"


async def test_the_seeded_price_list_prices_every_operation(services: Services) -> None:
    listed = {p.operation: p for p in await services.prices.list()}
    assert set(listed) == set(SEEDED)
    for operation, seed in SEEDED.items():
        price = listed[operation]
        assert (price.app_id, price.price_milli, price.unit, price.unit_size) == (
            seed.app_id,
            seed.price_milli,
            seed.unit,
            seed.unit_size,
        )


async def test_the_worked_example_of_the_docs(services: Services) -> None:
    """docs/pricing.md: 3 credits, 4 local chats, a bulk import of 15 items, 7 chats."""
    await funded(services, "ann", 3)
    steps = [("ai_chat_ollama", None)] * 4 + [("bulk_import", 15)] + [("ai_chat_ollama", None)] * 7
    seen = []
    for operation, quantity in steps:
        result = await services.credits.use_operation("ann", operation, quantity)
        assert result.balance is not None
        seen.append((-result.entry.amount, result.balance.accrued_milli, result.balance.balance))
    assert seen == [
        (0, 100, 3), (0, 200, 3), (0, 300, 3), (0, 400, 3), (0, 700, 3), (0, 800, 3),
        (0, 900, 3), (1, 0, 2), (0, 100, 2), (0, 200, 2), (0, 300, 2), (0, 400, 2),
    ]  # fmt: skip
