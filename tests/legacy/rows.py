"""One row of every kind the legacy import writes, and how to check them in a store."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from mana_credits_adapters.legacy.target import SqlImportTarget, SqlImportWriter
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_adapters.sql.tables import gift_codes, stripe_customers
from mana_credits_core.gifts import (
    GiftCode,
    GiftRedemption,
    GiftStatus,
    GiftType,
    RedemptionStatus,
    email_key,
)
from mana_credits_core.ledger import (
    Balance,
    LedgerEntry,
    TransactionStatus,
    TransactionType,
    UsageStat,
)
from mana_credits_core.legacy import ImportedBalance, StripeCustomer
from mana_credits_core.purchases import Package, Purchase, PurchaseStatus
from mana_credits_core.reservations import Reservation, ReservationStatus
from mana_credits_core.sync import BillingInterval, SyncSubscription

AT = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
USER = "user-alice"


def at(days: float) -> datetime:
    return AT + timedelta(days=days)


@dataclass(frozen=True)
class Rows:
    """One row of every kind the import writes."""

    balance: ImportedBalance
    entries: list[LedgerEntry]
    package: Package
    purchase: Purchase
    usage: UsageStat
    customer: StripeCustomer
    subscription: SyncSubscription
    reservation: Reservation
    gift: GiftCode
    redemption: GiftRedemption


def entry(
    entry_id: str, *, user: str = USER, key: str | None = None, metadata: dict[str, object] | None
) -> LedgerEntry:
    return LedgerEntry(
        id=entry_id,
        user_id=user,
        type=TransactionType.PURCHASE,
        status=TransactionStatus.COMPLETED,
        amount=1000,
        balance_before=0,
        balance_after=1000,
        app_id="stripe",
        description="Credits purchase",
        metadata=metadata,
        idempotency_key=key,
        created_at=at(1),
        completed_at=at(1.001),
    )


def gift(gift_id: str = "gift-1", code: str = "ABC234") -> GiftCode:
    return GiftCode(
        id=gift_id,
        code=code,
        creator_id=USER,
        creator_name="a***",
        total_credits=250,
        redeemed=1,
        type=GiftType.PERSONALIZED,
        status=GiftStatus.DEPLETED,
        target_email=" Bob@Example.COM",
        message="For you",
        expires_at=at(90),
        reservation_transaction_id="entry-gift",
        created_at=at(2),
        updated_at=at(3),
    )


def redemption(redemption_id: str = "redemption-1", gift_id: str = "gift-1") -> GiftRedemption:
    return GiftRedemption(
        id=redemption_id,
        gift_code_id=gift_id,
        redeemer_user_id="user-bob",
        status=RedemptionStatus.SUCCESS,
        credits_received=250,
        credit_transaction_id="entry-redeemed",
        source_app_id="web",
        created_at=at(3),
    )


def purchase(purchase_id: str = "purchase-1", intent: str | None = "pi_1") -> Purchase:
    return Purchase(
        id=purchase_id,
        user_id=USER,
        package_id="package-1",
        credits=1000,
        price_euro_cents=900,
        stripe_payment_intent_id=intent,
        stripe_checkout_session_id=None,
        stripe_customer_id="cus_1",
        status=PurchaseStatus.COMPLETED,
        metadata={"source": "legacy"},
        created_at=at(1),
        completed_at=at(1.001),
        clawed_back=100,
    )


def rows() -> Rows:
    return Rows(
        balance=ImportedBalance(Balance(USER, 750, 1000, 250, debt=40), at(0), at(4)),
        entries=[
            entry("entry-1", key="k-1", metadata={"purchaseId": "purchase-1", "n": [1, 2]}),
            entry("entry-2", metadata=None),
        ],
        package=Package(
            id="package-1",
            name="Plus",
            description=None,
            credits=1000,
            price_euro_cents=900,
            stripe_price_id="price_1",
            active=False,
            sort_order=3,
            metadata={"badge": "best"},
            created_at=at(-30),
            updated_at=at(-29),
        ),
        purchase=purchase(),
        usage=UsageStat(USER, "chat", date(2024, 3, 2), 250, 7),
        customer=StripeCustomer(USER, "cus_1", at(1)),
        subscription=SyncSubscription(
            user_id=USER,
            active=True,
            interval=BillingInterval.MONTHLY,
            next_interval=BillingInterval.YEARLY,
            anchor_at=at(-60),
            months_paid=2,
            next_charge_at=at(0),
            paused_at=None,
            is_gifted=False,
            gifted_by=None,
            gifted_at=None,
            created_at=at(-60),
            updated_at=at(-1),
        ),
        reservation=Reservation(
            id="reservation-1",
            user_id=USER,
            amount=30,
            reason="Export",
            app_id="legacy",
            status=ReservationStatus.COMMITTED,
            created_at=at(2),
            resolved_at=at(2.01),
            transaction_id="entry-1",
        ),
        gift=gift(),
        redemption=redemption(),
    )


async def write_all(writer: SqlImportWriter, data: Rows) -> list[int]:
    return [
        await writer.write_balances([data.balance]),
        await writer.write_entries(data.entries),
        await writer.write_packages([data.package]),
        await writer.write_purchases([data.purchase]),
        await writer.write_usage([data.usage]),
        await writer.write_customers([data.customer]),
        await writer.write_subscriptions([data.subscription]),
        await writer.write_reservations([data.reservation]),
        await writer.write_gifts([data.gift]),
        await writer.write_redemptions([data.redemption]),
    ]


ONE_OF_EACH = [1, 2, 1, 1, 1, 1, 1, 1, 1, 1]


async def customer_created_at(store: SqlStore, user_id: str) -> datetime | None:
    async with store.reader() as reader:
        found: datetime | None = await reader.connection.scalar(
            sa.select(stripe_customers.c.created_at).where(stripe_customers.c.user_id == user_id)
        )
        return found


async def assert_stored(store: SqlStore, data: Rows) -> None:
    """Every row reads back through the repositories exactly as it was written."""
    async with store.reader() as reader:
        assert await reader.balances.get(USER) == data.balance.balance
        page = await reader.ledger.list(USER, limit=10)
        assert sorted(page, key=lambda e: e.id) == data.entries
        assert await reader.packages.list(active_only=False) == [data.package]
        assert await reader.purchases.get(data.purchase.id) == data.purchase
        assert await reader.usage.for_user(USER) == [data.usage]
        assert await reader.customers.get(USER) == data.customer.stripe_customer_id
        assert await reader.sync.get(USER) == data.subscription
        assert await reader.reservations.get(data.reservation.id) == data.reservation
        assert await reader.gifts.by_code(data.gift.code) == data.gift
        assert await reader.gifts.redemptions(data.gift.id) == [data.redemption]
        # The gift is found by its target's address, in any case and spacing.
        active = dataclasses.replace(data.gift, status=GiftStatus.ACTIVE)
        async with store.unit_of_work() as unit:
            await unit.connection.execute(sa.update(gift_codes).values(status="active"))
            assert await unit.gifts.pending_for_email(email_key("bob@example.com"), at(5)) == [
                active
            ]
    assert await customer_created_at(store, USER) == data.customer.created_at


async def assert_empty(store: SqlStore) -> None:
    async with store.reader() as reader:
        assert await reader.balances.get(USER) is None
        assert await reader.ledger.list(USER, limit=10) == []
        assert await reader.packages.list(active_only=False) == []
        assert await reader.purchases.get("purchase-1") is None
        assert await reader.usage.for_user(USER) == []
        assert await reader.customers.get(USER) is None
        assert await reader.sync.get(USER) is None
        assert await reader.reservations.get("reservation-1") is None
        assert await reader.gifts.by_code("ABC234") is None
        assert await reader.gifts.redemptions("gift-1") == []


async def write_one(target: SqlImportTarget, kind: str, rows: Sequence[object]) -> int:
    async with target.transaction(commit=True) as writer:
        written: int = await getattr(writer, f"write_{kind}")(rows)
        return written
