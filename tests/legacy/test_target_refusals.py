"""Rows the store refuses during the legacy import: named, with what to do, and nothing kept."""

from __future__ import annotations

import dataclasses

import pytest

from mana_credits_adapters.legacy.target import SqlImportTarget
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core.ledger import Balance
from mana_credits_core.legacy import (
    ImportedBalance,
    ImportRefused,
    StripeCustomer,
    TargetHoldsOtherData,
)

from .rows import (
    AT,
    USER,
    assert_empty,
    assert_stored,
    entry,
    gift,
    purchase,
    redemption,
    rows,
    write_all,
    write_one,
)

COLLISIONS = [
    pytest.param(
        "entries",
        entry("entry-9", key="k-1", metadata=None),
        "credits.transactions",
        "(user_id, idempotency_key) = (user-alice, k-1)",
        id="idempotency-key",
    ),
    pytest.param("gifts", gift("gift-9"), "gifts.gift_codes", "code ABC234", id="gift-code"),
    pytest.param(
        "purchases",
        purchase("purchase-9"),
        "credits.purchases",
        "stripe_payment_intent_id pi_1",
        id="payment-intent",
    ),
    pytest.param(
        "customers",
        StripeCustomer("user-bob", "cus_1", AT),
        "credits.stripe_customers",
        "stripe_customer_id cus_1",
        id="stripe-customer",
    ),
    pytest.param(
        "redemptions",
        redemption("redemption-9"),
        "gifts.gift_redemptions",
        "gift_code_id gift-1",
        id="successful-redemption",
    ),
]


@pytest.mark.parametrize(("kind", "row", "table", "value"), COLLISIONS)
async def test_a_row_taken_by_other_data_refuses_the_import(
    sql_store: SqlStore, kind: str, row: object, table: str, value: str
) -> None:
    target = SqlImportTarget(sql_store)
    data = rows()
    async with target.transaction(commit=True) as writer:
        await write_all(writer, data)

    async def import_colliding() -> None:
        async with target.transaction(commit=True) as writer:
            other = ImportedBalance(Balance("user-carol", 5, 5, 0), AT, AT)
            assert await writer.write_balances([other]) == 1
            # The colliding row comes after one that goes in, in the same batch.
            before = {"entries": [entry("entry-8", metadata=None)]}.get(kind, [])
            await getattr(writer, f"write_{kind}")([*before, row])

    with pytest.raises(TargetHoldsOtherData) as refused:
        await import_colliding()
    message = refused.value.message
    assert table in message, message
    assert value in message, message
    assert "import into a new database or remove" in message
    await assert_stored(sql_store, data)
    async with sql_store.reader() as reader:
        assert await reader.balances.get("user-carol") is None
        assert await reader.ledger.get("entry-8") is None


async def test_two_imported_rows_sharing_a_key_are_refused(sql_store: SqlStore) -> None:
    target = SqlImportTarget(sql_store)
    twins = [entry("entry-1", key="k-1", metadata=None), entry("entry-2", key="k-1", metadata=None)]
    with pytest.raises(ImportRefused) as refused:
        await write_one(target, "entries", twins)
    assert not isinstance(refused.value, TargetHoldsOtherData)
    assert "entry-1, entry-2" in refused.value.message, refused.value
    await assert_empty(sql_store)


BROKEN = [
    pytest.param(
        "packages",
        dataclasses.replace(rows().package, id="package-0"),
        dataclasses.replace(rows().package, credits=0),
        "credits.packages row package-1",
        "ck_packages_credits_positive",
        id="package-without-credits",
    ),
    pytest.param(
        "balances",
        ImportedBalance(Balance("user-bob", 5, 5, 0), AT, AT),
        ImportedBalance(Balance(USER, -5, 0, 5), AT, AT),
        f"credits.balances row {USER}",
        "ck_balances_balance_not_negative",
        id="negative-balance",
    ),
    pytest.param(
        "reservations",
        dataclasses.replace(rows().reservation, id="reservation-0"),
        dataclasses.replace(rows().reservation, amount=0),
        "credits.reservations row reservation-1",
        "ck_reservations_amount_positive",
        id="empty-reservation",
    ),
    pytest.param(
        "purchases",
        purchase("purchase-0", intent=None),
        dataclasses.replace(rows().purchase, clawed_back=5000),
        "credits.purchases row purchase-1",
        "ck_purchases_clawback_bounded",
        id="clawback-beyond-credits",
    ),
]


@pytest.mark.parametrize(("kind", "good", "bad", "named", "rule"), BROKEN)
async def test_a_row_breaking_a_rule_is_refused_by_name(
    sql_store: SqlStore, kind: str, good: object, bad: object, named: str, rule: str
) -> None:
    target = SqlImportTarget(sql_store)
    with pytest.raises(ImportRefused) as refused:
        # The broken row is not the batch's first: the refusal names the right one.
        await write_one(target, kind, [good, bad])
    assert not isinstance(refused.value, TargetHoldsOtherData)
    assert named in refused.value.message, refused.value
    assert rule in refused.value.message, refused.value
    await assert_empty(sql_store)
    async with sql_store.reader() as reader:
        assert await reader.packages.list(active_only=False) == []
        assert await reader.balances.get("user-bob") is None


@pytest.mark.postgres
async def test_writing_on_after_a_refusal_says_the_transaction_is_aborted(
    clean_pg_store: SqlStore,
) -> None:
    target = SqlImportTarget(clean_pg_store)
    broken = dataclasses.replace(rows().package, credits=0)

    async def carry_on_regardless() -> None:
        async with target.transaction(commit=True) as writer:
            with pytest.raises(ImportRefused):
                await writer.write_packages([broken])
            await writer.write_balances([rows().balance])

    with pytest.raises(RuntimeError, match="aborted by an earlier refusal"):
        await carry_on_regardless()
    await assert_empty(clean_pg_store)
