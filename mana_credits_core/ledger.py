"""Balances, ledger entries and the commands that move credits between them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .lots import DEFAULT_PRIORITY, LotSource
from .pricing import Priced

JsonObject = dict[str, Any]


class TransactionType(enum.StrEnum):
    """Why credits moved. `grant`, `clawback`, `reinstatement`, `forfeit`,
    `adjustment` and `expire` are additions to the old service."""

    PURCHASE = "purchase"
    USAGE = "usage"
    REFUND = "refund"
    GIFT = "gift"
    GRANT = "grant"  # an operator's audited gift of credits, or a reward (app `community`)
    CLAWBACK = "clawback"  # credits taken back after a payment refund or dispute
    # Clawed-back credits given back: a refund failed, a dispute was won (what the user
    # owed is paid first, so the entry holds only what reached the balance).
    REINSTATEMENT = "reinstatement"
    FORFEIT = "forfeit"  # what was left when the account was deleted (docs/privacy.md)
    # The legacy import's correction where the old ledger did not sum to the old balance
    # (docs/cutover.md); its metadata says by how much and why.
    ADJUSTMENT = "adjustment"
    # The free credits of a lot past its expiry date (docs/credits.md).
    EXPIRE = "expire"


CREDIT_TYPES = frozenset(
    {
        TransactionType.PURCHASE,
        TransactionType.REFUND,
        TransactionType.GIFT,
        TransactionType.GRANT,
        TransactionType.REINSTATEMENT,
    }
)
"""Entry types that add credits to a balance (`CreditsService.credit`); the others take
credits away (usage, claw-back, forfeit, expiry) or are the legacy import's own."""


class TransactionStatus(enum.StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Balance:
    """A user's spendable balance and lifetime totals.

    `balance` excludes credits held by pending reservations; `total_earned` and
    `total_spent` are the sums of the user's completed credit and debit entries.
    `accrued_milli` (0..999) is what priced debits cost beyond the whole credits they
    charged, in milli-credits, carried to the user's next priced debit (`pricing.accrue`).
    """

    user_id: str
    balance: int
    total_earned: int
    total_spent: int
    debt: int = 0  # credits owed after a clawback found the balance short
    accrued_milli: int = 0

    @classmethod
    def zero(cls, user_id: str) -> Balance:
        return cls(user_id=user_id, balance=0, total_earned=0, total_spent=0)

    def debited(self, credits: int, debt_change: int, accrued_milli: int) -> Balance:
        """This balance after `credits` left it (spent), the debt moved by `debt_change`
        and `accrued_milli` accrued. Built field by field: on a debit's path
        `dataclasses.replace` took a third of the lot book's time."""
        return Balance(
            user_id=self.user_id,
            balance=self.balance - credits,
            total_earned=self.total_earned,
            total_spent=self.total_spent + credits,
            debt=self.debt + debt_change,
            accrued_milli=accrued_milli,
        )


@dataclass(frozen=True, slots=True)
class BalanceSummary:
    """A balance and the number of the user's ledger entries (of any type and status)."""

    balance: Balance
    transactions_count: int


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One immutable line of the ledger; `amount` is negative for debits."""

    id: str
    user_id: str
    type: TransactionType
    status: TransactionStatus
    amount: int
    balance_before: int
    balance_after: int
    app_id: str
    description: str
    metadata: JsonObject | None
    idempotency_key: str | None
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Debit:
    """Take `amount` credits from a user's spendable balance, if they fit.

    The store applies it atomically: the idempotency key (scoped to the user) is
    claimed by a unique constraint, the balance moves only if it covers the amount,
    the entry is written and the day's usage is counted, or nothing happens.

    A priced debit (`priced` set: an operation of the price list) charges the whole
    credits its cost makes due with what the user accrued (`pricing.accrue`), at most
    `amount` (= `priced.most_credits`), and carries the rest; its entry records the
    pricing in its metadata (`pricing.PRICING_KEY`).
    """

    entry_id: str
    user_id: str
    amount: int
    app_id: str
    description: str
    metadata: JsonObject | None
    idempotency_key: str | None
    now: datetime
    type: TransactionType = TransactionType.USAGE
    # A claw-back takes the credits of this purchase's lot first (docs/credits.md).
    purchase_id: str | None = None
    priced: Priced | None = None

    @property
    def usage_day(self) -> date:
        return self.now.date()

    @property
    def counts_as_usage(self) -> bool:
        """Only spending by apps is usage; credits held for a gift code are not."""
        return self.type == TransactionType.USAGE


@dataclass(frozen=True, slots=True)
class Credit:
    """Add `amount` credits to a user's balance, creating the balance if absent.

    The credits become one lot (docs/credits.md): it expires at `expires_at` (None:
    never), is burned by `priority` (0..100, lower first), records where it came from
    (`lot_source`, by default derived from `type`) and, for a purchase, `purchase_id`.
    """

    entry_id: str
    user_id: str
    amount: int
    type: TransactionType
    app_id: str
    description: str
    metadata: JsonObject | None
    idempotency_key: str | None
    now: datetime
    expires_at: datetime | None = None
    priority: int = DEFAULT_PRIORITY
    lot_source: LotSource | None = None
    purchase_id: str | None = None

    @property
    def source(self) -> LotSource:
        """Where the lot comes from: `lot_source`, else what the entry type says."""
        if self.lot_source is not None:
            return self.lot_source
        return _SOURCES.get(self.type, LotSource.GRANT)


_SOURCES = {
    TransactionType.PURCHASE: LotSource.PURCHASE,
    TransactionType.GRANT: LotSource.GRANT,
    TransactionType.GIFT: LotSource.GIFT,
    TransactionType.REFUND: LotSource.REFUND,
    TransactionType.REINSTATEMENT: LotSource.REINSTATEMENT,
}


@dataclass(frozen=True, slots=True)
class Applied:
    """The operation moved credits: the new entry and the balance after it."""

    entry: LedgerEntry
    balance: Balance


@dataclass(frozen=True, slots=True)
class Replayed:
    """The idempotency key was already used: the original entry, nothing moved."""

    entry: LedgerEntry


@dataclass(frozen=True, slots=True)
class Refused:
    """The debit did not fit: `available` is what the user could spend, `required`
    what the debit needed (None: its amount)."""

    available: int
    required: int | None = None


@dataclass(frozen=True, slots=True)
class NoBalance:
    """The user has no balance row, so there is nothing to debit."""


def completed_entry(
    command: Debit | Credit, amount: int, balance_before: int, balance_after: int
) -> LedgerEntry:
    """The ledger entry a store writes for an applied debit or credit.

    `amount` is signed (negative for a debit); the balances come from the store's
    atomic update, so they are exact under concurrency.
    """
    return LedgerEntry(
        id=command.entry_id,
        user_id=command.user_id,
        type=command.type,
        status=TransactionStatus.COMPLETED,
        amount=amount,
        balance_before=balance_before,
        balance_after=balance_after,
        app_id=command.app_id,
        description=command.description,
        metadata=command.metadata,
        idempotency_key=command.idempotency_key,
        created_at=command.now,
        completed_at=command.now,
    )


DebitOutcome = Applied | Replayed | Refused | NoBalance
CreditOutcome = Applied | Replayed


@dataclass(frozen=True, slots=True)
class UsageStat:
    """Credits a user spent in one app on one UTC day."""

    user_id: str
    app_id: str
    day: date
    credits_used: int
    operations: int


@dataclass(frozen=True, slots=True)
class OperationUsage:
    """Priced debits of one operation on one UTC day (`user_id` "*": all users): how
    many calls, how many units, their cost in milli-credits."""

    user_id: str
    operation: str
    day: date
    calls: int
    quantity: int
    cost_milli: int


@dataclass(frozen=True, slots=True)
class LedgerPage:
    """A page of entries, newest first, and the cursor for the next (older) page."""

    entries: list[LedgerEntry]
    next_cursor: str | None = field(default=None)


ADJUSTMENT_EARNED = "totalEarned"
ADJUSTMENT_SPENT = "totalSpent"
"""Metadata keys of an `adjustment` entry: its correction of `total_earned` and
`total_spent` (credits, either sign), which its amount alone cannot express."""


def totals_of(entry: LedgerEntry) -> tuple[int, int, int]:
    """What a completed entry adds to (net, total_earned, total_spent), in credits.

    A credit counts in `total_earned`, a debit in `total_spent` (as a positive number).
    An `adjustment` counts its amount in the net and its metadata's `totalEarned` /
    `totalSpent` corrections in the totals: the old service's totals could drift apart
    from its ledger independently of its balance, and the import keeps all three.
    """
    if entry.type is TransactionType.ADJUSTMENT:
        meta = entry.metadata or {}
        return entry.amount, int(meta.get(ADJUSTMENT_EARNED, 0)), int(meta.get(ADJUSTMENT_SPENT, 0))
    return entry.amount, max(entry.amount, 0), max(-entry.amount, 0)
