"""Operator lookups on every store: ids by prefix, purchases with credits clawed back,
every redemption attempt of a gift. The in-memory store answers exactly as SQL does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.payments.dev import DevGateway, dev_payment
from mana_credits_adapters.settings import Settings
from mana_credits_core import InvalidInput, Principal, TransactionType
from mana_credits_core.errors import GiftAlreadyClaimed, GiftNotFound
from mana_credits_core.gifts import (
    GiftCode,
    GiftRedemption,
    GiftStatus,
    GiftType,
    RedemptionStatus,
)
from mana_credits_core.ports import Store
from mana_credits_core.purchases import Package, Purchase, PurchaseStatus
from mana_credits_core.services import Services
from mana_credits_core.validation import MAX_PAGE_SIZE

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)

# Two share "0b6d2c4e", one only "0b6d"; the others tell a careless match apart:
# upper case (SQLite's LIKE ignores case), and % or _ (LIKE's wildcards).
IDS = [
    "0b6d2c4e-8f1a-4d3b-9c7e-5a2f1e0d9c8b",
    "0b6d2c4e-0000-4000-8000-000000000000",
    "0b6dffff-1111-4111-8111-111111111111",
    "0B6D2C4E-AAAA-4AAA-8AAA-AAAAAAAAAAAA",
    "0b6d%c4e-2222-4222-8222-222222222222",
    "1b6d_c4e-3333-4333-8333-333333333333",
]


@pytest.fixture
def ops(store: Store, settings: Settings, clock: TickingClock) -> Services:
    return build_services(
        store, settings, clock=clock, payments=DevGateway("http://localhost:3061")
    )


def package(package_id: str) -> Package:
    return Package(package_id, f"P {package_id}", None, 100, 100, None, True, 0, None, T0, T0)


def purchase(purchase_id: str, *, clawed_back: int = 0) -> Purchase:
    return Purchase(
        id=purchase_id,
        user_id="alice",
        package_id="p",
        credits=100,
        price_euro_cents=100,
        stripe_payment_intent_id=None,
        stripe_checkout_session_id=None,
        stripe_customer_id=None,
        status=PurchaseStatus.COMPLETED,
        metadata=None,
        created_at=T0,
        completed_at=T0,
        clawed_back=clawed_back,
    )


def gift(gift_id: str, code: str) -> GiftCode:
    return GiftCode(
        id=gift_id,
        code=code,
        creator_id="alice",
        creator_name="Alice",
        total_credits=10,
        redeemed=0,
        type=GiftType.SIMPLE,
        status=GiftStatus.ACTIVE,
        target_email=None,
        message=None,
        expires_at=T0 + timedelta(days=30),
        reservation_transaction_id=None,
        created_at=T0,
        updated_at=T0,
    )


def attempt(redemption_id: str, gift_id: str, at: datetime, user: str) -> GiftRedemption:
    return GiftRedemption(
        id=redemption_id,
        gift_code_id=gift_id,
        redeemer_user_id=user,
        status=RedemptionStatus.FAILED_ALREADY_CLAIMED,
        credits_received=0,
        credit_transaction_id=None,
        source_app_id=None,
        created_at=at,
    )


async def test_ids_starting_with_match_exactly_in_id_order(store: Store) -> None:
    async with store.unit_of_work() as uow:
        for n, i in enumerate(IDS):
            await uow.packages.add(package(i))
            await uow.purchases.add(purchase(i))
            await uow.gifts.add(gift(i, f"CODE{n}"))
        await uow.commit()
    async with store.reader() as uow:
        for repository in (uow.packages, uow.purchases, uow.gifts):
            assert await repository.ids_starting_with("0b6d2c4e", 10) == [IDS[1], IDS[0]]
            assert await repository.ids_starting_with("0b6d", 10) == [
                IDS[4], IDS[1], IDS[0], IDS[2]
            ]  # fmt: skip
            assert await repository.ids_starting_with("0b6d", 2) == [IDS[4], IDS[1]]
            assert await repository.ids_starting_with(IDS[0], 10) == [IDS[0]]
            assert await repository.ids_starting_with("0B6D", 10) == [IDS[3]]
            assert await repository.ids_starting_with("0b6d%", 10) == [IDS[4]]
            assert await repository.ids_starting_with("_b6d", 10) == []
            assert await repository.ids_starting_with("%", 10) == []
            assert await repository.ids_starting_with("f", 10) == []
            assert await repository.ids_starting_with(IDS[0] + "0", 10) == []


async def test_redemptions_of_one_gift_oldest_first_ties_by_id(store: Store) -> None:
    async with store.unit_of_work() as uow:
        await uow.gifts.add(gift("g1", "CODEONE"))
        await uow.gifts.add(gift("g2", "CODETWO"))
        await uow.gifts.add_redemption(attempt("r-b", "g1", T0 + timedelta(seconds=5), "bob"))
        await uow.gifts.add_redemption(attempt("r-c", "g1", T0, "carol"))
        await uow.gifts.add_redemption(attempt("r-a", "g1", T0 + timedelta(seconds=5), "dan"))
        await uow.gifts.add_redemption(attempt("r-z", "g2", T0, "erin"))
        await uow.commit()
    async with store.reader() as uow:
        found = await uow.gifts.redemptions("g1")
        assert [r.id for r in found] == ["r-c", "r-a", "r-b"]
        assert found[0] == attempt("r-c", "g1", T0, "carol")
        assert [r.id for r in await uow.gifts.redemptions("g2")] == ["r-z"]
        assert await uow.gifts.redemptions("missing") == []


async def test_clawed_back_filter_of_all_purchases(store: Store) -> None:
    async with store.unit_of_work() as uow:
        await uow.purchases.add(purchase("p-none"))
        await uow.purchases.add(purchase("p-part", clawed_back=40))
        await uow.purchases.add(purchase("p-full", clawed_back=100))
        await uow.commit()
    async with store.reader() as uow:
        found = await uow.reports.purchases(10, clawed_back=True)
        assert [p.id for p in found] == ["p-part", "p-full"]  # equal times: id descending
        assert [p.clawed_back for p in found] == [40, 100]
        assert len(await uow.reports.purchases(10)) == 3
        assert [p.id for p in await uow.reports.purchases(1, clawed_back=True)] == ["p-part"]
        none = await uow.reports.purchases(10, user_id="bob", clawed_back=True)
        assert none == []


async def test_services_find_purchases_packages_and_gifts_by_prefix(ops: Services) -> None:
    plus = await ops.purchases.add_package("Plus", 1100, 1000)
    bought = (await ops.purchases.start("alice", plus.id)).purchase
    await ops.credits.credit("alice", 100, TransactionType.GRANT, "funds")
    made = await ops.gifts.create(Principal("alice"), 30)
    lookups = (
        (ops.purchases.purchase_ids_starting_with, bought.id, "purchaseId"),
        (ops.purchases.package_ids_starting_with, plus.id, "packageId"),
        (ops.gifts.gift_ids_starting_with, made.id, "gift"),
    )
    for lookup, full, field in lookups:
        assert await lookup(full[:8]) == [full]
        assert await lookup(f"  {full[:8].upper()} ") == [full]  # as a person types it
        assert await lookup(full) == [full]
        assert await lookup(full + "0") == []
        # A blank prefix names nothing: an input error on the field, not every record.
        with pytest.raises(InvalidInput) as raised:
            await lookup("   ")
        assert raised.value.field == field
        with pytest.raises(InvalidInput) as raised:
            await lookup(full[:8], 0)
        assert raised.value.field == "limit"
    # Each kind has its own ids: a purchase's id names no package or gift.
    assert await ops.purchases.package_ids_starting_with(bought.id) == []
    assert await ops.gifts.gift_ids_starting_with(bought.id) == []
    assert await ops.gifts.gift_ids_starting_with(made.code) == []  # ids, not codes


async def test_prefix_matches_stop_one_past_a_page(ops: Services, store: Store) -> None:
    many = [f"{n:08x}-0000-4000-8000-000000000000" for n in range(MAX_PAGE_SIZE + 5)]
    async with store.unit_of_work() as uow:
        for i in many:
            await uow.purchases.add(purchase(i))
        await uow.commit()
    found = await ops.purchases.purchase_ids_starting_with("000000", 10_000)
    assert found == many[: MAX_PAGE_SIZE + 1]  # enough to say "a page or more"
    assert await ops.purchases.purchase_ids_starting_with("000000", 3) == many[:3]
    assert await ops.purchases.purchase_ids_starting_with("0000006") == many[0x60:]


async def test_all_purchases_clawed_back_after_a_refund(ops: Services) -> None:
    plus = await ops.purchases.add_package("Plus", 1100, 1000)
    refunded = (await ops.purchases.start("alice", plus.id)).purchase
    kept = (await ops.purchases.start("alice", plus.id)).purchase
    for p in (refunded, kept):
        await ops.purchases.handle(dev_payment(p))
    assert await ops.purchases.all_purchases(clawed_back=True) == []
    await ops.purchases.refund(refunded.id, "asked by mail", "ops")
    found = await ops.purchases.all_purchases(clawed_back=True)
    assert [(p.id, p.clawed_back) for p in found] == [(refunded.id, 1100)]
    assert await ops.purchases.all_purchases(user_id="bob", clawed_back=True) == []
    pending = await ops.purchases.all_purchases(status="pending", clawed_back=True)
    assert pending == []
    assert len(await ops.purchases.all_purchases()) == 2


async def test_services_list_every_redemption_attempt_of_a_gift(ops: Services) -> None:
    await ops.credits.credit("alice", 100, TransactionType.GRANT, "funds")
    made = await ops.gifts.create(Principal("alice"), 30)
    untouched = await ops.gifts.create(Principal("alice"), 20)
    assert await ops.gifts.redemptions(made.id) == []
    await ops.gifts.redeem(Principal("bob"), made.code, source_app_id="chat")
    with pytest.raises(GiftAlreadyClaimed):
        await ops.gifts.redeem(Principal("carol"), made.code)
    found = await ops.gifts.redemptions(made.id)
    assert [(r.redeemer_user_id, r.status, r.credits_received, r.source_app_id) for r in found] == [
        ("bob", RedemptionStatus.SUCCESS, 30, "chat"),
        ("carol", RedemptionStatus.FAILED_ALREADY_CLAIMED, 0, None),
    ]
    assert found[0].created_at < found[1].created_at
    assert await ops.gifts.redemptions(untouched.id) == []
    with pytest.raises(GiftNotFound):
        await ops.gifts.redemptions("no-such-gift")
