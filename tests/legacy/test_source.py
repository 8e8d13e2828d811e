"""The old database read through `PostgresLegacySource`, against a real PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import astuple
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

import pytest

from mana_credits_adapters.legacy.layout import ENUMS
from mana_credits_adapters.legacy.source import (
    PURCHASE_STATUSES,
    REDEMPTION_STATUSES,
    STATUSES,
    TYPES,
    PostgresLegacySource,
)
from mana_credits_core.gifts import RedemptionStatus
from mana_credits_core.ledger import TransactionStatus, TransactionType
from mana_credits_core.legacy import SOURCE_TABLES, LegacySource
from mana_credits_core.purchases import PurchaseStatus

from .conftest import collect
from .fixture import (
    BROKEN_CHAIN_ENTRIES,
    BROKEN_CHAIN_USER,
    COMMITTED_RESERVATION,
    DEPLETED_GIFT,
    DOUBLE_CREDITS,
    DRIFT_USERS,
    DUPLICATE_CHARGES,
    DUPLICATE_REDEMPTION,
    FAILED_ENTRY,
    MISSING_BALANCE_USER,
    NEGATIVE_USER,
    NO_EXPIRY_GIFT,
    NO_PACKAGE_PURCHASE_USER,
    PENDING_PAYMENT_INTENT,
    PENDING_PURCHASE,
    PERSONALIZED_GIFT,
    PERSONALIZED_GIFT_CODE,
    PERSONALIZED_GIFT_EMAIL,
    PERSONALIZED_GIFT_ENTRY,
    RECENT_RESERVATION,
    REFUNDED_RESERVATION,
    REPLAY,
    ROWS,
    ROWS_OLDER,
    STUCK_RESERVATION,
    SYNC_ACTIVE_LAST_CHARGE_AT,
    SYNC_ACTIVE_NEXT_CHARGE_AT,
    SYNC_ACTIVE_USER,
    SYNC_GIFTED_USER,
    SYNC_INACTIVE_USER,
    SYNC_PAUSED_USER,
    SYNC_QUARTERLY_USER,
    held_credits,
    ledger_sums,
    old_balances,
    query,
)

pytestmark = pytest.mark.postgres

T = TypeVar("T")


def is_utc(value: datetime | None) -> bool:
    return value is None or value.utcoffset() == timedelta(0)


def test_every_old_enum_value_has_its_core_value() -> None:
    assert set(TYPES) == set(ENUMS["transaction_type"])
    assert {TYPES[value].value for value in TYPES} == set(ENUMS["transaction_type"])
    assert set(STATUSES) == set(ENUMS["transaction_status"]) == set(PURCHASE_STATUSES)
    assert set(REDEMPTION_STATUSES) == set(ENUMS["gift_redemption_status"])


async def test_layout_and_counts_of_the_newest_layout(legacy_url: str) -> None:
    async with PostgresLegacySource.connect(legacy_url) as opened:
        source: LegacySource = opened  # the port, checked by mypy
        layout = await source.layout()
        counts = await source.counts()
    assert (layout.has_grant, layout.has_reservations) == (True, True)
    assert list(counts) == list(SOURCE_TABLES)
    assert counts == {table: ROWS[table] for table in SOURCE_TABLES}


async def test_users_carry_the_balances_row_and_the_ledger_sums(legacy_url: str) -> None:
    async with PostgresLegacySource.connect(legacy_url, batch_size=7) as source:
        users = await collect(source.users(), batch=7)
    rows, sums, held = old_balances(legacy_url), ledger_sums(legacy_url), held_credits(legacy_url)
    entries = dict(
        query(legacy_url, "SELECT user_id, count(*) FROM credits.transactions GROUP BY 1")
    )
    by_id = {user.user_id: user for user in users}
    assert [user.user_id for user in users] == sorted(set(rows) | set(sums))
    for user in users:
        assert (user.balance, user.total_earned, user.total_spent) == rows.get(
            user.user_id, (None, None, None)
        )
        net, earned, spent = sums.get(user.user_id, (0, 0, 0))
        assert (user.ledger_net, user.ledger_earned, user.ledger_spent) == (net, earned, spent)
        assert user.entries == entries.get(user.user_id, 0)
        assert user.held == held.get(user.user_id, 0)
        assert is_utc(user.created_at)
        assert is_utc(user.updated_at)
        assert is_utc(user.first_seen_at)
    agree = {
        user.user_id
        for user in users
        if (user.balance, user.total_earned, user.total_spent)
        == (user.ledger_net - user.held, user.ledger_earned, user.ledger_spent)
    }
    assert set(by_id) - agree == {*DRIFT_USERS, MISSING_BALANCE_USER}
    missing = by_id[MISSING_BALANCE_USER]
    assert (missing.balance, missing.created_at, missing.updated_at) == (None, None, None)
    assert missing.ledger_net > 0
    first_entry = query(
        legacy_url,
        "SELECT min(created_at) FROM credits.transactions WHERE user_id = %(user)s",
        {"user": MISSING_BALANCE_USER},
    )[0][0]
    assert missing.first_seen_at == first_entry
    negative = by_id[NEGATIVE_USER]
    assert negative.balance == negative.ledger_net < 0
    assert {user.user_id for user in users if user.held} == set(held)
    assert len(held) == 2
    stuck = query(
        legacy_url,
        "SELECT user_id, created_at FROM credits.reservations WHERE id = %(id)s",
        {"id": STUCK_RESERVATION},
    )[0]
    assert by_id[stuck[0]].first_seen_at is not None
    assert by_id[stuck[0]].first_seen_at <= stuck[1]
    # A failed debit counts as an entry, not in the sums.
    failed_user = query(
        legacy_url,
        "SELECT user_id FROM credits.transactions WHERE id = %(id)s",
        {"id": FAILED_ENTRY},
    )[0][0]
    assert by_id[failed_user].entries == 4
    assert by_id[failed_user].ledger_spent == 80
    # Users with a balances row and nothing else.
    assert by_id[SYNC_GIFTED_USER].entries == 0
    assert by_id[SYNC_GIFTED_USER].first_seen_at is None


async def test_entries_come_field_for_field_in_creation_order(legacy_url: str) -> None:
    async with PostgresLegacySource.connect(legacy_url, batch_size=10) as source:
        entries = await collect(source.entries(), batch=10)
    assert len(entries) == ROWS["transactions"]
    assert entries == sorted(entries, key=lambda entry: (entry.created_at, entry.id))
    assert len({entry.id for entry in entries}) == len(entries)
    # Every type the old layout has, and none of this service's own additions.
    assert {entry.type.value for entry in entries} == {
        "purchase", "usage", "refund", "gift", "grant"
    }  # fmt: skip
    assert all(is_utc(entry.created_at) and is_utc(entry.completed_at) for entry in entries)
    by_id = {entry.id: entry for entry in entries}
    replay = by_id[REPLAY.entry_id]
    assert (replay.user_id, replay.idempotency_key, replay.amount, replay.app_id) == (
        REPLAY.user_id,
        REPLAY.idempotency_key,
        REPLAY.amount,
        REPLAY.app_id,
    )
    assert replay.type is TransactionType.USAGE
    assert replay.status is TransactionStatus.COMPLETED
    grants = [entry for entry in entries if entry.type is TransactionType.GRANT]
    assert grants
    for grant in grants:
        assert grant.app_id == "community"
        assert grant.idempotency_key is None
        assert grant.metadata is not None
        assert set(grant.metadata) == {"reason", "referenceId"}
    failed = by_id[FAILED_ENTRY]
    assert failed.status is TransactionStatus.FAILED
    assert failed.completed_at is None
    creation = by_id[PERSONALIZED_GIFT_ENTRY]
    assert creation.type is TransactionType.GIFT
    assert creation.amount < 0
    assert creation.app_id == "gifts"
    raw = query(
        legacy_url,
        "SELECT id::text, user_id, type::text, status::text, amount, balance_before, "
        "balance_after, app_id, description, metadata, idempotency_key, created_at, "
        "completed_at FROM credits.transactions ORDER BY id",
    )
    read = sorted(entries, key=lambda entry: entry.id)
    assert [astuple(entry) for entry in read] == [tuple(row) for row in raw]


async def test_packages_and_purchases(legacy_url: str) -> None:
    async with PostgresLegacySource.connect(legacy_url, batch_size=4) as source:
        packages = await collect(source.packages(), batch=4)
        purchases = await collect(source.purchases(), batch=4)
    assert [package.id for package in packages] == sorted(package.id for package in packages)
    assert len(packages) == ROWS["packages"]
    assert {package.active for package in packages} == {True, False}
    assert len(purchases) == ROWS["purchases"]
    assert [purchase.id for purchase in purchases] == sorted(p.id for p in purchases)
    by_id = {purchase.id: purchase for purchase in purchases}
    pending = by_id[PENDING_PURCHASE]
    assert pending.status is PurchaseStatus.PENDING
    assert pending.completed_at is None
    assert pending.stripe_payment_intent_id == PENDING_PAYMENT_INTENT
    assert {purchase.status for purchase in purchases} == {
        PurchaseStatus.COMPLETED,
        PurchaseStatus.PENDING,
        PurchaseStatus.FAILED,
    }
    custom = [purchase for purchase in purchases if purchase.package_id == ""]
    assert [purchase.user_id for purchase in custom] == [NO_PACKAGE_PURCHASE_USER]
    package_ids = {package.id for package in packages}
    assert all(p.package_id in package_ids for p in purchases if p.package_id)
    assert all(p.stripe_checkout_session_id is None and p.clawed_back == 0 for p in purchases)
    assert all(is_utc(p.created_at) and is_utc(p.completed_at) for p in purchases)


async def test_usage_is_summed_per_user_app_and_utc_day(legacy_url: str) -> None:
    async with PostgresLegacySource.connect(legacy_url, batch_size=5) as source:
        usage = await collect(source.usage(), batch=5)
    expected: dict[tuple[str, str, date], list[int]] = defaultdict(lambda: [0, 0])
    for user, app, credits, moment in query(
        legacy_url, "SELECT user_id, app_id, credits_used, date FROM credits.usage_stats"
    ):
        day = expected[user, app, moment.astimezone(UTC).date()]
        day[0] += credits
        day[1] += 1
    assert {(u.user_id, u.app_id, u.day): [u.credits_used, u.operations] for u in usage} == (
        expected
    )
    keys = [(u.user_id, u.app_id, u.day) for u in usage]
    assert keys == sorted(keys)
    assert len(keys) == len(set(keys))
    anna = {
        (u.app_id, u.day): (u.credits_used, u.operations) for u in usage if u.user_id == "u-anna"
    }
    assert anna["chat", date(2026, 2, 3)] == (35, 3)
    # 23:30 and 00:15 UTC: one day in the database's own time zone (Berlin), two in UTC.
    assert anna["memoro", date(2026, 3, 2)] == (25, 1)
    assert anna["memoro", date(2026, 3, 3)] == (10, 1)


async def test_customers_and_subscriptions(legacy_url: str) -> None:
    async with PostgresLegacySource.connect(legacy_url, batch_size=3) as source:
        customers = await collect(source.customers(), batch=3)
        subscriptions = await collect(source.subscriptions(), batch=3)
        entries = await collect(source.entries())
    assert len(customers) == ROWS["stripe_customers"]
    assert [c.user_id for c in customers] == sorted(c.user_id for c in customers)
    assert all(c.stripe_customer_id.startswith("cus_") for c in customers)
    assert [s.user_id for s in subscriptions] == sorted(s.user_id for s in subscriptions)
    by_user = {s.user_id: s for s in subscriptions}
    assert len(by_user) == ROWS["sync_subscriptions"]
    active = by_user[SYNC_ACTIVE_USER]
    assert (active.active, active.billing_interval, active.amount_charged) == (True, "monthly", 30)
    assert active.next_charge_at == SYNC_ACTIVE_NEXT_CHARGE_AT
    assert active.last_charge_at == SYNC_ACTIVE_LAST_CHARGE_AT
    paused = by_user[SYNC_PAUSED_USER]
    assert not paused.active
    assert paused.paused_at is not None
    gifted = by_user[SYNC_GIFTED_USER]
    assert gifted.is_gifted
    assert gifted.gifted_by
    assert gifted.gifted_at
    assert gifted.last_charge_at is None
    assert by_user[SYNC_QUARTERLY_USER].billing_interval == "quarterly"
    inactive = by_user[SYNC_INACTIVE_USER]
    assert (inactive.active, inactive.paused_at, inactive.billing_interval) == (
        False,
        None,
        "yearly",
    )
    for subscription in subscriptions:
        charges = [
            entry.created_at
            for entry in entries
            if entry.user_id == subscription.user_id
            and entry.app_id == "sync"
            and entry.type is TransactionType.USAGE
            and entry.status is TransactionStatus.COMPLETED
        ]
        assert subscription.last_charge_at == max(charges, default=None)
        assert is_utc(subscription.next_charge_at)
        assert is_utc(subscription.created_at)


async def test_reservations(legacy_url: str) -> None:
    async with PostgresLegacySource.connect(legacy_url) as source:
        reservations = await collect(source.reservations())
    assert [r.id for r in reservations] == sorted(r.id for r in reservations)
    statuses = {r.id: r.status for r in reservations}
    assert statuses == {
        RECENT_RESERVATION: "reserved",
        STUCK_RESERVATION: "reserved",
        COMMITTED_RESERVATION: "committed",
        REFUNDED_RESERVATION: "refunded",
    }
    by_id = {r.id: r for r in reservations}
    assert by_id[RECENT_RESERVATION].created_at == datetime(2026, 11, 29, 16, tzinfo=UTC)
    assert by_id[STUCK_RESERVATION].created_at.year == 2026
    assert by_id[STUCK_RESERVATION].created_at.month == 1
    assert by_id[STUCK_RESERVATION].resolved_at is None
    assert by_id[COMMITTED_RESERVATION].resolved_at is not None


async def test_gifts_and_redemptions(legacy_url: str) -> None:
    async with PostgresLegacySource.connect(legacy_url, batch_size=2) as source:
        gifts = await collect(source.gifts(), batch=2)
        redemptions = await collect(source.redemptions(), batch=2)
    assert len(gifts) == ROWS["gift_codes"]
    assert len(redemptions) == ROWS["gift_redemptions"]
    assert [g.id for g in gifts] == sorted(g.id for g in gifts)
    assert [r.id for r in redemptions] == sorted(r.id for r in redemptions)
    by_id = {gift.id: gift for gift in gifts}
    personalized = by_id[PERSONALIZED_GIFT]
    assert (personalized.code, personalized.type, personalized.status) == (
        PERSONALIZED_GIFT_CODE,
        "personalized",
        "active",
    )
    assert personalized.target_email == PERSONALIZED_GIFT_EMAIL
    assert personalized.creator_name is not None
    assert "@" in personalized.creator_name
    assert personalized.reservation_transaction_id == PERSONALIZED_GIFT_ENTRY
    oldest = by_id[NO_EXPIRY_GIFT]
    assert (oldest.expires_at, oldest.creator_name) == (None, None)
    assert (by_id[DEPLETED_GIFT].redeemed, by_id[DEPLETED_GIFT].status) == (1, "depleted")
    assert {g.status for g in gifts} == {"active", "depleted", "cancelled"}
    assert all(is_utc(g.expires_at) and is_utc(g.updated_at) for g in gifts)
    assert {r.status for r in redemptions} == set(RedemptionStatus) - {
        RedemptionStatus.FAILED_ALREADY_CLAIMED
    }
    success = [r for r in redemptions if r.gift_code_id == DEPLETED_GIFT]
    assert [r.status for r in success].count(RedemptionStatus.SUCCESS) == 1
    claimed = next(r for r in success if r.status is RedemptionStatus.SUCCESS)
    assert claimed.credit_transaction_id is not None
    assert claimed.credits_received == 200
    assert all(
        r.credit_transaction_id is None and r.credits_received == 0
        for r in redemptions
        if r.status is not RedemptionStatus.SUCCESS
    )


async def test_findings_are_exactly_the_planted_anomalies(legacy_url: str) -> None:
    async with PostgresLegacySource.connect(legacy_url) as source:
        findings = await source.findings()
        entries = await collect(source.entries())
    by_id = {entry.id: entry for entry in entries}

    doubles = {(d.purchase_id, d.user_id, d.credits) for d in findings.double_credits}
    assert doubles == {(d.purchase_id, d.user_id, d.credits) for d in DOUBLE_CREDITS}
    purchases = [d.purchase_id for d in findings.double_credits]
    assert purchases == sorted(purchases)
    for double in findings.double_credits:
        assert len(double.entry_ids) == 2
        assert sum(by_id[entry].amount for entry in double.entry_ids) == double.credits
        assert all(by_id[entry].type is TransactionType.PURCHASE for entry in double.entry_ids)

    assert [c.entry_id for c in findings.duplicate_charges] == list(DUPLICATE_CHARGES)
    for charge in findings.duplicate_charges:
        assert charge.user_id == SYNC_PAUSED_USER
        assert charge.amount == 30
        assert charge.charged_at - charge.previous_at < timedelta(days=28)
        assert by_id[charge.previous_entry_id].created_at == charge.previous_at

    # The chain recomputed here from the entries, to compare with the server's.
    previous: dict[str, int] = {}
    breaks = []
    for entry in entries:
        if entry.status is not TransactionStatus.COMPLETED:
            continue
        if entry.user_id in previous and previous[entry.user_id] != entry.balance_before:
            breaks.append((entry.user_id, entry.id, previous[entry.user_id], entry.balance_before))
        previous[entry.user_id] = entry.balance_after
    found = [
        (b.user_id, b.entry_id, b.previous_after, b.balance_before) for b in findings.broken_chains
    ]
    assert found == breaks
    assert [b[1] for b in found] == list(BROKEN_CHAIN_ENTRIES)
    assert {b[0] for b in found} == {BROKEN_CHAIN_USER}

    gift, redemptions = DUPLICATE_REDEMPTION
    assert [(d.gift_code_id, d.redemption_ids) for d in findings.duplicate_redemptions] == [
        (gift, redemptions)
    ]


async def test_the_older_layout_reads_without_grant_and_reservations(
    older_legacy_url: str,
) -> None:
    async with PostgresLegacySource.connect(older_legacy_url) as source:
        layout = await source.layout()
        counts = await source.counts()
        reservations = await collect(source.reservations())
        users = await collect(source.users())
        entries = await collect(source.entries())
        findings = await source.findings()
    assert (layout.has_grant, layout.has_reservations) == (False, False)
    assert counts == {table: ROWS_OLDER[table] for table in SOURCE_TABLES}
    assert counts["reservations"] == 0
    assert reservations == []
    assert all(user.held == 0 for user in users)
    assert TransactionType.GRANT not in {entry.type for entry in entries}
    assert len(entries) == ROWS_OLDER["transactions"]
    assert {b.user_id for b in findings.broken_chains} == {BROKEN_CHAIN_USER}
