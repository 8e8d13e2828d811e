"""What the old service's database holds, as the import reads it, and the rows it writes.

The old layout is described in the cut-over guide (docs/cutover.md). Values that map
one to one onto this service's domain (ledger entries, packages, purchases, gift
redemptions) are read straight into the domain types; the rest are read in the old
shape here, so that the rules turning them into this service's rows stay in the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..ledger import Balance


@dataclass(frozen=True, slots=True)
class LegacyLayout:
    """Which optional parts of the old layout the source has.

    The last versions of the old service added the `grant` ledger type and the
    reservations table; older databases lack both and import all the same.
    """

    has_grant: bool
    has_reservations: bool


@dataclass(frozen=True, slots=True)
class LegacyUser:
    """One user as the old database knows them.

    `balance`, `total_earned`, `total_spent` and the timestamps come from the balances
    row and are None when that row is missing. The `ledger_*` sums cover the user's
    completed transactions (credits; `ledger_spent` is positive), `entries` counts
    every transaction whatever its status, `held` sums reservations still `reserved`.
    """

    user_id: str
    balance: int | None
    total_earned: int | None
    total_spent: int | None
    created_at: datetime | None
    updated_at: datetime | None
    ledger_net: int
    ledger_earned: int
    ledger_spent: int
    entries: int
    held: int
    first_seen_at: datetime | None  # the oldest transaction or reservation
    last_seen_at: datetime | None  # the newest transaction or reservation


@dataclass(frozen=True, slots=True)
class LegacyGift:
    """One row of the old `gifts.gift_codes` (old shape: expiry and name may be missing)."""

    id: str
    code: str
    short_url: str | None
    creator_id: str
    creator_name: str | None
    total_credits: int
    redeemed: int
    type: str
    status: str
    target_email: str | None
    message: str | None
    expires_at: datetime | None
    reservation_transaction_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class LegacySubscription:
    """One row of the old `credits.sync_subscriptions`, with the user's newest completed
    Cloud Sync charge (`usage` entry of app `sync`), which the old layout does not keep."""

    user_id: str
    active: bool
    billing_interval: str
    amount_charged: int
    activated_at: datetime | None
    next_charge_at: datetime | None
    paused_at: datetime | None
    is_gifted: bool
    gifted_by: str | None
    gifted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    last_charge_at: datetime | None


@dataclass(frozen=True, slots=True)
class LegacyReservation:
    """One row of the old `credits.reservations` (no app id in the old layout)."""

    id: str
    user_id: str
    amount: int
    reason: str
    status: str  # reserved, committed, refunded
    created_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class StripeCustomer:
    """A user's Stripe customer id (the old row's e-mail copy is not carried over)."""

    user_id: str
    stripe_customer_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DoubleCredit:
    """One purchase credited by more than one completed `purchase` transaction."""

    purchase_id: str
    user_id: str
    entry_ids: tuple[str, ...]
    credits: int  # the sum of those transactions


@dataclass(frozen=True, slots=True)
class DuplicateCharge:
    """A Cloud Sync charge less than one period (28 days a month) after the previous one."""

    user_id: str
    entry_id: str
    previous_entry_id: str
    amount: int  # credits, positive
    charged_at: datetime
    previous_at: datetime


@dataclass(frozen=True, slots=True)
class BrokenChain:
    """A completed transaction whose `balance_before` is not the `balance_after` of the
    user's previous completed transaction (ordered by creation time, then id)."""

    user_id: str
    entry_id: str
    previous_after: int
    balance_before: int


@dataclass(frozen=True, slots=True)
class DuplicateRedemption:
    """A gift code with more than one successful redemption."""

    gift_code_id: str
    redemption_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnbackedGift:
    """An active gift code whose creation debit is missing: no completed transaction
    of exactly minus its credits is named by its `reservation_transaction_id`."""

    gift_id: str
    code: str
    creator_id: str
    credits: int


@dataclass(frozen=True, slots=True)
class LegacyFindings:
    """The anomalies that need a look across rows, found by the source's own queries."""

    double_credits: list[DoubleCredit] = field(default_factory=list)
    duplicate_charges: list[DuplicateCharge] = field(default_factory=list)
    broken_chains: list[BrokenChain] = field(default_factory=list)
    duplicate_redemptions: list[DuplicateRedemption] = field(default_factory=list)
    unbacked_gifts: list[UnbackedGift] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ImportedBalance:
    """A balances row as the import writes it (the domain `Balance` plus timestamps).

    `lots_since`: the user's entries up to that moment predate credit lots (their
    credits are in the user's opening lot); None when the user has no old entries.
    """

    balance: Balance
    created_at: datetime
    updated_at: datetime
    lots_since: datetime | None = None
