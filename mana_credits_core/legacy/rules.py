"""How each old row becomes this service's row: pure functions, one per kind of row.

Every rule is deterministic (no clock, no randomness): two imports of the same old
database write the same rows, which is what lets a rerun match them by id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from ..gifts import GiftCode, GiftStatus, GiftType, looks_like_email, masked_name
from ..ledger import (
    ADJUSTMENT_EARNED,
    ADJUSTMENT_SPENT,
    Balance,
    JsonObject,
    LedgerEntry,
    TransactionStatus,
    TransactionType,
)
from ..lots import Lot, opening_lot
from ..reservations import Reservation, ReservationStatus
from ..rewards import reward_key
from ..sync import BillingInterval, SyncSubscription, add_months
from .records import (
    ImportedBalance,
    LegacyGift,
    LegacyReservation,
    LegacySubscription,
    LegacyUser,
)

IMPORT_APP = "import"
"""App id of the entries the import itself writes (adjustments)."""

ADJUSTMENT_KEY = "legacy-import:adjustment"
"""Idempotency key of a user's adjustment: at most one per user, whatever reruns do."""

OLD_GIFT_VALIDITY = timedelta(days=90)
"""The old service's default gift validity, given to old gifts that carry no expiry."""

ADJUSTMENT_DELAY = timedelta(milliseconds=1)
"""How long after the user's last old activity the adjustment is dated."""

RESERVATION_APP = "system"
"""App id of imported reservations (the old layout has none): the reserve default."""

_NAMESPACE = uuid.UUID("5b0f3d0e-2f7a-4c55-9d1e-6a8f1c1e0a11")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Opening:
    """A user's balances row as imported, the opening lot holding its credits and, if
    the old ledger disagrees with it, the adjustment entry that makes this service's
    ledger agree.

    `difference` is the adjustment's amount (credits); `earned_correction` and
    `spent_correction` its corrections of the lifetime totals (see `ledger.totals_of`).
    `lot` is None for a user with no credits (balance and held both 0).
    """

    balance: ImportedBalance
    adjustment: LedgerEntry | None
    difference: int
    earned_correction: int
    spent_correction: int
    missing_row: bool
    negative: int  # the old balance (or rebuilt one) when it was below zero, else 0
    lot: Lot | None = None

    @property
    def entries(self) -> int:
        """Ledger entries the import writes for the user besides the old ones."""
        return 0 if self.adjustment is None else 1


LEGACY_METADATA = "legacy"
"""Where an old metadata value that is not a JSON object is kept (metadata is an object
or null here, as the HTTP contract says)."""


def metadata(old: object) -> tuple[JsonObject | None, bool]:
    """Old metadata as this service keeps it, and whether it had to be wrapped: an
    object or null stays, anything else (an array, a string, a number) becomes
    `{"legacy": <the old value>}`."""
    if old is None or isinstance(old, dict):
        return old, False
    return {LEGACY_METADATA: old}, True


def adjustment_id(user_id: str) -> str:
    """The id of a user's adjustment entry (UUID 5: the same on every run)."""
    return str(uuid.uuid5(_NAMESPACE, f"adjustment:{user_id}"))


def opening(user: LegacyUser) -> Opening:
    """The balances row, opening lot and adjustment for one old user.

    The balance is the old row's, exactly (a negative one becomes 0 with that much
    debt, since balances here never go below zero). A missing row is rebuilt from the
    old ledger (completed sum minus credits held). Where the ledger, less what is
    held, does not sum to that balance, or its credits and debits do not sum to the
    old totals, one `adjustment` entry (app `import`) records the difference and the
    corrections in its metadata, so that reconcile holds.
    """
    held_net = user.ledger_net - user.held
    missing = user.balance is None
    if user.balance is None:
        old_balance = held_net
        earned, spent = user.ledger_earned, user.ledger_spent
    else:
        old_balance = user.balance
        earned = user.total_earned if user.total_earned is not None else user.ledger_earned
        spent = user.total_spent if user.total_spent is not None else user.ledger_spent
    balance, debt = max(old_balance, 0), max(-old_balance, 0)
    created = user.created_at or user.first_seen_at or _EPOCH
    updated = user.updated_at or created
    row = ImportedBalance(Balance(user.user_id, balance, earned, spent, debt), created, updated)
    difference = balance - held_net
    earned_fix, spent_fix = earned - user.ledger_earned, spent - user.ledger_spent
    adjustment = None
    if difference or earned_fix or spent_fix:
        # Just after the user's last old activity: the newest line of the history.
        at = _after(max(updated, user.last_seen_at or updated))
        if old_balance < 0:
            reason = (
                f"the old balance {old_balance} is below zero: raised to 0, the "
                f"{-old_balance} credits are owed as debt"
            )
        elif difference:
            reason = (
                f"the old ledger less credits held sums to {held_net}, "
                f"the old balance is {old_balance}"
            )
        else:
            reason = "the old lifetime totals differ from the old ledger's sums"
        adjustment = LedgerEntry(
            id=adjustment_id(user.user_id),
            user_id=user.user_id,
            type=TransactionType.ADJUSTMENT,
            status=TransactionStatus.COMPLETED,
            amount=difference,
            balance_before=held_net,
            balance_after=balance,
            app_id=IMPORT_APP,
            description="Opening adjustment: the old ledger did not agree with the old balance",
            metadata={
                "reason": reason,
                "difference": difference,
                ADJUSTMENT_EARNED: earned_fix,
                ADJUSTMENT_SPENT: spent_fix,
                "oldBalance": old_balance,
            },
            idempotency_key=ADJUSTMENT_KEY,
            created_at=at,
            completed_at=at,
        )
    # Every old entry (the adjustment included) predates lots: their credits are all
    # in the one opening lot, of the balance and what pending reservations hold.
    since = adjustment.created_at if adjustment is not None else user.last_seen_at
    opened = balance + user.held
    return Opening(
        replace(row, lots_since=since),
        adjustment,
        difference,
        earned_fix,
        spent_fix,
        missing,
        min(old_balance, 0),
        opening_lot(user.user_id, opened, user.held, created) if opened > 0 else None,
    )


def _after(moment: datetime) -> datetime:
    """`moment` + ADJUSTMENT_DELAY (the largest datetime, an old `infinity`, stays)."""
    try:
        return moment + ADJUSTMENT_DELAY
    except OverflowError:
        return moment


LEGACY_KEY = "legacyIdempotencyKey"
"""Metadata key keeping an old grant's own idempotency key when the grant key replaces it."""


class GrantKeys:
    """Gives old grants the idempotency key this service's grant uses.

    The old service recognised a repeated grant by `metadata.referenceId`; here the key
    `reward_key(referenceId)` does it. So an old grant with a reference gets that key,
    and a grant repeated after the switch is still recognised. A key the old grant
    carried besides is kept in its metadata (`legacyIdempotencyKey`; grants were never
    replayed by it: the grant call takes no key). A second old grant of the same
    reference to the same user (an old race) keeps its own key.
    """

    def __init__(self) -> None:
        self._taken: set[tuple[str, str]] = set()
        self.duplicates: list[LedgerEntry] = []
        self.rekeyed: list[LedgerEntry] = []

    def entry(self, entry: LedgerEntry) -> LedgerEntry:
        """`entry` as imported (unchanged unless it is an old grant with a reference)."""
        if entry.type is not TransactionType.GRANT or not isinstance(entry.metadata, dict):
            return entry
        reference = entry.metadata.get("referenceId")
        if not isinstance(reference, str) or not reference:
            return entry
        key = reward_key(reference)
        if entry.idempotency_key == key:
            self._taken.add((entry.user_id, key))
            return entry
        if (entry.user_id, key) in self._taken:
            if entry.status is TransactionStatus.COMPLETED:
                self.duplicates.append(entry)
            return entry
        self._taken.add((entry.user_id, key))
        if entry.idempotency_key is None:
            return replace(entry, idempotency_key=key)
        self.rekeyed.append(entry)
        kept = {**entry.metadata, LEGACY_KEY: entry.idempotency_key}
        return replace(entry, idempotency_key=key, metadata=kept)


def gift(old: LegacyGift) -> GiftCode:
    """An old gift code as this service keeps it.

    The code and the id stay (old 6-character codes remain redeemable). A gift without
    an expiry gets the old default validity (90 days from creation); a creator name
    that is an e-mail address is masked as this service masks new ones, since the
    public gift page shows it.
    """
    return GiftCode(
        id=old.id,
        code=old.code,
        creator_id=old.creator_id,
        creator_name=creator_name(old.creator_name),
        total_credits=old.total_credits,
        redeemed=old.redeemed,
        type=GiftType(old.type),
        status=GiftStatus(old.status),
        target_email=old.target_email,
        message=old.message,
        expires_at=old.expires_at or old.created_at + OLD_GIFT_VALIDITY,
        reservation_transaction_id=old.reservation_transaction_id,
        created_at=old.created_at,
        updated_at=old.updated_at,
    )


def creator_name(old: str | None) -> str:
    """The name shown for a gift's creator: kept unless missing or an e-mail address."""
    if old is None or not old.strip():
        return masked_name(None)
    return masked_name(old) if looks_like_email(old) else old


def interval_of(old: str) -> BillingInterval:
    """The old billing interval (the same three values)."""
    return BillingInterval(old)


@dataclass(frozen=True, slots=True)
class Overdue:
    """An active subscription whose next charge was already due when imported."""

    due_since: datetime
    charged_from: datetime  # the start of the one period the next billing run charges
    missed: int  # whole periods between the two that are not charged


def overdue(old: LegacySubscription, now: datetime) -> Overdue | None:
    """Whether the old subscription's next charge is past `now`, and from when it is
    charged here: only the period running at `now` (its start on the old calendar),
    not every period the old service failed to charge."""
    if not old.active or old.is_gifted:
        return None
    interval = interval_of(old.billing_interval)
    due = _due(old, interval)
    if due > now:
        return None
    periods = 0
    while add_months(due, (periods + 1) * interval.months) <= now:
        periods += 1
    return Overdue(due, add_months(due, periods * interval.months), periods)


def _due(old: LegacySubscription, interval: BillingInterval) -> datetime:
    if old.next_charge_at is not None:
        return old.next_charge_at
    if old.last_charge_at is not None:
        return add_months(old.last_charge_at, interval.months)
    return old.activated_at or old.created_at


def subscription(old: LegacySubscription, now: datetime) -> SyncSubscription:
    """An old Cloud Sync subscription on this service's calendar.

    The old layout keeps only `next_charge_at`; here charges fall on `anchor_at` +
    `months_paid` months. So the calendar is anchored on the old next charge with
    nothing counted as paid beyond it: an active subscription is next charged exactly
    when the old service would have charged it, and the period already paid is not
    charged again. One without a next charge is due one interval after its last
    charge (or at its activation if it was never charged). One already due at `now` is
    charged once, for the period running at `now` (see `overdue`). A paused one stays
    paused; a gifted one stays gifted (never charged); an inactive one whose paid
    period has not ended resumes without a charge if reactivated before its end.
    """
    interval = interval_of(old.billing_interval)
    if old.is_gifted and old.active:
        anchor = old.gifted_at or old.created_at
        return _subscription(old, interval, anchor, None, active=True)
    if old.is_gifted:
        # A revoked gift: this service clears the gifted flag when it revokes one.
        old = replace(old, is_gifted=False)
    if old.active:
        late = overdue(old, now)
        anchor = late.charged_from if late else _due(old, interval)
        return _subscription(old, interval, anchor, anchor, active=True)
    # Inactive or paused: nothing is charged; a paid period still running is kept.
    running = old.next_charge_at if old.paused_at is None else None
    start = running or old.paused_at or old.created_at
    return _subscription(old, interval, start, None, active=False)


def _subscription(
    old: LegacySubscription,
    interval: BillingInterval,
    anchor: datetime,
    next_charge_at: datetime | None,
    *,
    active: bool,
) -> SyncSubscription:
    return SyncSubscription(
        user_id=old.user_id,
        active=active,
        interval=interval,
        next_interval=None,
        anchor_at=anchor,
        months_paid=0,
        next_charge_at=next_charge_at,
        paused_at=None if active else old.paused_at,
        is_gifted=old.is_gifted,
        gifted_by=old.gifted_by,
        gifted_at=old.gifted_at,
        created_at=old.created_at,
        updated_at=old.updated_at,
    )


_RESERVATION_STATUS = {
    "reserved": ReservationStatus.PENDING,
    "committed": ReservationStatus.COMMITTED,
    "refunded": ReservationStatus.REFUNDED,
}


def reservation(old: LegacyReservation) -> Reservation:
    """An old reservation: `reserved` ones stay held (the time-to-live sweep releases
    those nobody commits), resolved ones are history."""
    return Reservation(
        id=old.id,
        user_id=old.user_id,
        amount=old.amount,
        reason=old.reason,
        app_id=RESERVATION_APP,
        status=_RESERVATION_STATUS[old.status],
        created_at=old.created_at,
        resolved_at=old.resolved_at,
        transaction_id=None,
    )
