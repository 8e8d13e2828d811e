"""The legacy import's rules, one old row at a time (no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from mana_credits_core.gifts import GiftStatus
from mana_credits_core.ledger import (
    LedgerEntry,
    TransactionStatus,
    TransactionType,
    totals_of,
)
from mana_credits_core.legacy import (
    LegacyGift,
    LegacyReservation,
    LegacySubscription,
    LegacyUser,
    rules,
)
from mana_credits_core.reservations import ReservationStatus
from mana_credits_core.rewards import reward_key
from mana_credits_core.sync import BillingInterval, SyncSubscription, add_months

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def user(**changes: object) -> LegacyUser:
    base = LegacyUser(
        user_id="u1",
        balance=70,
        total_earned=100,
        total_spent=30,
        created_at=T0,
        updated_at=T0 + timedelta(days=5),
        ledger_net=70,
        ledger_earned=100,
        ledger_spent=30,
        entries=3,
        held=0,
        first_seen_at=T0,
        last_seen_at=T0 + timedelta(days=4),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_user_whose_ledger_agrees_gets_the_row_and_no_adjustment() -> None:
    plan = rules.opening(user())
    b = plan.balance.balance
    assert (b.balance, b.total_earned, b.total_spent, b.debt) == (70, 100, 30, 0)
    assert plan.adjustment is None
    assert plan.entries == 0
    assert plan.balance.created_at == T0
    assert plan.balance.updated_at == T0 + timedelta(days=5)


def test_held_credits_are_part_of_an_agreeing_ledger() -> None:
    # Reserved 20: the old balance already went down, no entry yet.
    assert rules.opening(user(balance=50, held=20)).adjustment is None


def test_drift_keeps_the_balance_and_writes_one_adjustment_that_sums() -> None:
    plan = rules.opening(user(balance=75, total_earned=105))
    entry = plan.adjustment
    assert entry is not None
    assert plan.difference == 5
    assert plan.balance.balance.balance == 75
    assert entry.type is TransactionType.ADJUSTMENT
    assert entry.status is TransactionStatus.COMPLETED
    assert (entry.amount, entry.balance_before, entry.balance_after) == (5, 70, 75)
    assert entry.id == rules.adjustment_id("u1")
    assert entry.idempotency_key == rules.ADJUSTMENT_KEY
    assert entry.metadata is not None
    assert entry.metadata["difference"] == 5
    # The newest line of the history: just after the user's last old activity.
    assert entry.created_at == T0 + timedelta(days=5) + rules.ADJUSTMENT_DELAY
    later = rules.opening(user(balance=75, last_seen_at=T0 + timedelta(days=9))).adjustment
    assert later is not None
    assert later.created_at == T0 + timedelta(days=9) + rules.ADJUSTMENT_DELAY
    # Ledger + adjustment now give the old row's three numbers.
    net, earned, spent = totals_of(entry)
    assert (70 + net, 100 + earned, 30 + spent) == (75, 105, 30)


def test_totals_that_drift_alone_are_corrected_without_moving_the_balance() -> None:
    # An old race counted a debit twice in total_spent only.
    plan = rules.opening(user(total_spent=35, balance=70))
    assert plan.adjustment is not None
    assert plan.difference == 0
    assert totals_of(plan.adjustment) == (0, 0, 5)


def test_a_missing_balance_row_is_rebuilt_from_the_ledger() -> None:
    plan = rules.opening(
        user(balance=None, total_earned=None, total_spent=None, created_at=None, updated_at=None)
    )
    b = plan.balance.balance
    assert plan.missing_row
    assert plan.adjustment is None
    assert (b.balance, b.total_earned, b.total_spent) == (70, 100, 30)
    assert plan.balance.created_at == T0  # the first activity


def test_a_negative_balance_becomes_zero_with_debt() -> None:
    plan = rules.opening(user(balance=-5, total_earned=100, total_spent=105, ledger_net=-5))
    b = plan.balance.balance
    assert (b.balance, b.debt, plan.negative) == (0, 5, -5)
    assert plan.adjustment is not None
    assert plan.difference == 5
    assert plan.adjustment.balance_after == 0


def test_adjustment_ids_are_stable_and_per_user() -> None:
    assert rules.adjustment_id("a") == rules.adjustment_id("a") != rules.adjustment_id("b")


def grant(entry_id: str, reference: str | None, key: str | None = None) -> LedgerEntry:
    return LedgerEntry(
        entry_id, "u1", TransactionType.GRANT, TransactionStatus.COMPLETED, 5, 0, 5,
        "community", "Feedback", None if reference is None else {"referenceId": reference},
        key, T0, T0,
    )  # fmt: skip


def test_old_keyless_grants_get_the_grant_key_once_per_reference() -> None:
    keys = rules.GrantKeys()
    first = keys.entry(grant("g1", "fb-1"))
    again = keys.entry(grant("g2", "fb-1"))
    other = keys.entry(grant("g3", "fb-2"))
    assert first.idempotency_key == reward_key("fb-1")
    assert again.idempotency_key is None
    assert keys.duplicates == [again]
    assert other.idempotency_key == reward_key("fb-2")
    # A keyed grant with a reference gets the grant key too; one without is left alone.
    assert keys.entry(grant("g4", "fb-3", key="k")).idempotency_key == reward_key("fb-3")
    assert keys.entry(grant("g5", None)).idempotency_key is None


def old_gift(**changes: object) -> LegacyGift:
    base = LegacyGift(
        id="g", code="LUCK23", short_url=None, creator_id="c", creator_name="Ann",
        total_credits=50, redeemed=0, type="simple", status="active", target_email=None,
        message=None, expires_at=T0 + timedelta(days=30), reservation_transaction_id="t",
        created_at=T0, updated_at=T0,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def test_gifts_keep_code_and_status_and_get_an_expiry_and_a_masked_name() -> None:
    kept = rules.gift(old_gift())
    assert (kept.code, kept.status, kept.creator_name) == ("LUCK23", GiftStatus.ACTIVE, "Ann")
    missing = rules.gift(old_gift(expires_at=None, creator_name=None))
    assert missing.expires_at == T0 + rules.OLD_GIFT_VALIDITY
    assert missing.creator_name == "A Mana user"
    assert rules.gift(old_gift(creator_name="ann@example.com")).creator_name == "a***"


def old_sub(**changes: object) -> LegacySubscription:
    base = LegacySubscription(
        user_id="u1", active=True, billing_interval="monthly", amount_charged=30,
        activated_at=T0, next_charge_at=T0 + timedelta(days=31), paused_at=None,
        is_gifted=False, gifted_by=None, gifted_at=None, created_at=T0, updated_at=T0,
        last_charge_at=T0,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def subscription(old: LegacySubscription, now: datetime = T0) -> SyncSubscription:
    return rules.subscription(old, now)


def test_an_active_subscription_is_next_charged_at_its_old_next_charge() -> None:
    sub = subscription(old_sub())
    due = T0 + timedelta(days=31)
    assert sub.active
    assert sub.next_charge_at == due
    # The calendar from there: nothing counted as paid beyond the old next charge.
    assert add_months(sub.anchor_at, sub.months_paid) == due


def test_an_active_subscription_without_next_charge_is_due_an_interval_after_its_last() -> None:
    sub = subscription(old_sub(next_charge_at=None, billing_interval="quarterly"))
    assert sub.interval is BillingInterval.QUARTERLY
    assert sub.next_charge_at == add_months(T0, 3)


def test_paused_gifted_and_revoked_subscriptions() -> None:
    paused = subscription(
        old_sub(active=False, next_charge_at=None, paused_at=T0 + timedelta(days=2))
    )
    assert not paused.active
    assert paused.paused_at == T0 + timedelta(days=2)
    assert paused.next_charge_at is None
    gifted = subscription(old_sub(is_gifted=True, gifted_by="admin", gifted_at=T0))
    assert gifted.active
    assert gifted.is_gifted
    assert gifted.next_charge_at is None
    revoked = subscription(old_sub(active=False, is_gifted=True, gifted_at=T0))
    assert not revoked.active
    assert not revoked.is_gifted


def test_an_inactive_subscription_keeps_its_paid_period() -> None:
    end = T0 + timedelta(days=20)
    sub = subscription(old_sub(active=False, next_charge_at=end))
    assert not sub.active
    assert sub.next_charge_at is None
    assert add_months(sub.anchor_at, sub.months_paid) == end  # reactivated before: no charge


def test_reservations_map_their_status() -> None:
    old = LegacyReservation("r", "u1", 20, "chat", "reserved", T0, None)
    assert rules.reservation(old).status is ReservationStatus.PENDING
    done = replace(old, status="committed", resolved_at=T0)
    assert rules.reservation(done).status is ReservationStatus.COMMITTED
    assert rules.reservation(replace(old, status="refunded")).status is ReservationStatus.REFUNDED


def test_an_overdue_subscription_is_charged_once_for_the_period_running_now() -> None:
    due = datetime(2026, 7, 1, tzinfo=UTC)
    now = datetime(2026, 11, 30, tzinfo=UTC)
    old = old_sub(billing_interval="quarterly", next_charge_at=due)
    late = rules.overdue(old, now)
    assert late == rules.Overdue(due, datetime(2026, 10, 1, tzinfo=UTC), 1)
    sub = subscription(old, now)
    assert sub.next_charge_at == datetime(2026, 10, 1, tzinfo=UTC)
    assert sub.anchor_at == sub.next_charge_at
    # Due a moment ago: that very period, nothing missed.
    assert rules.overdue(old, due) == rules.Overdue(due, due, 0)
    assert rules.overdue(old, due - timedelta(seconds=1)) is None
    # Never charged, no next charge: due since its activation.
    never = old_sub(next_charge_at=None, last_charge_at=None, activated_at=due)
    assert rules.overdue(never, now) == rules.Overdue(due, datetime(2026, 11, 1, tzinfo=UTC), 4)
    # Paused and gifted ones are never overdue.
    assert rules.overdue(replace(old, active=False), now) is None
    assert rules.overdue(replace(old, is_gifted=True), now) is None


def test_metadata_that_is_not_an_object_is_wrapped() -> None:
    assert rules.metadata({"a": 1}) == ({"a": 1}, False)
    assert rules.metadata(None) == (None, False)
    assert rules.metadata(["a", 1]) == ({"legacy": ["a", 1]}, True)
    assert rules.metadata("text") == ({"legacy": "text"}, True)


def test_a_keyed_old_grant_gets_the_grant_key_and_keeps_its_own_in_metadata() -> None:
    keys = rules.GrantKeys()
    entry = keys.entry(grant("g1", "fb-1", key="old-key"))
    assert entry.idempotency_key == reward_key("fb-1")
    assert entry.metadata == {"referenceId": "fb-1", rules.LEGACY_KEY: "old-key"}
    assert [e.id for e in keys.rekeyed] == ["g1"]
    # Metadata that is not an object (an old oddity) leaves the grant alone.
    odd = replace(grant("g2", None), metadata=["fb-2"])  # type: ignore[arg-type]
    assert keys.entry(odd) is odd
