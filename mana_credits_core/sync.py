"""Cloud Sync paid in credits: intervals, prices, and the calendar of charges."""

from __future__ import annotations

import calendar
import enum
from dataclasses import dataclass, replace
from datetime import datetime

from .ledger import Applied, Replayed
from .pricing import SYNC_APP


class BillingInterval(enum.StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"

    @property
    def months(self) -> int:
        return {"monthly": 1, "quarterly": 3, "yearly": 12}[self.value]

    @property
    def price(self) -> int:
        """Credits per period at the default monthly price (`DEFAULT_MONTHLY`): 30 a
        month, 90 a quarter, 360 a year, the old service's prices."""
        return self.price_at(DEFAULT_MONTHLY)

    def price_at(self, monthly: int) -> int:
        """Credits per period at `monthly` credits a month (the price list's
        `cloud_sync`): one period is that many months."""
        return monthly * self.months


DEFAULT_MONTHLY = 30
"""Credits a month of Cloud Sync costs unless the price list's `cloud_sync` says
otherwise (and the price a new store's list starts with)."""


def add_months(anchor: datetime, months: int) -> datetime:
    """`anchor` moved by whole calendar months, keeping its day where the month has it.

    Anchored on the activation day, so 31 January → 28/29 February → 31 March: the
    short month clamps one charge without dragging the later ones.
    """
    index = anchor.month - 1 + months
    year, month = anchor.year + index // 12, index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


@dataclass(frozen=True, slots=True)
class SyncSubscription:
    """One user's Cloud Sync subscription. Paused, never deleted, when credits run out.

    Charges fall on `anchor_at` + `months_paid` calendar months; `next_interval`, when
    set, replaces `interval` at the next charge. Gifted subscriptions are never charged
    and never paused.
    """

    user_id: str
    active: bool
    interval: BillingInterval
    next_interval: BillingInterval | None
    anchor_at: datetime
    months_paid: int
    next_charge_at: datetime | None
    paused_at: datetime | None
    is_gifted: bool
    gifted_by: str | None
    gifted_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def billed_interval(self) -> BillingInterval:
        """The interval the next charge will use."""
        return self.next_interval or self.interval


def advance(sub: SyncSubscription, now: datetime) -> SyncSubscription:
    """`sub` after its due period was charged at `now`: on to the next period, in the
    interval just billed."""
    interval = sub.billed_interval
    months = sub.months_paid + interval.months
    return replace(
        sub,
        interval=interval,
        next_interval=None,
        months_paid=months,
        next_charge_at=add_months(sub.anchor_at, months),
        updated_at=now,
    )


def pause(sub: SyncSubscription, now: datetime) -> SyncSubscription:
    """`sub` paused at `now` because its charge did not fit."""
    return replace(sub, active=False, paused_at=now, next_charge_at=None, updated_at=now)


@dataclass(frozen=True, slots=True)
class SyncStatus:
    active: bool
    interval: BillingInterval
    next_charge_at: datetime | None
    paused_at: datetime | None
    gifted: bool

    @classmethod
    def of(cls, sub: SyncSubscription | None) -> SyncStatus:
        if sub is None:
            return cls(False, BillingInterval.MONTHLY, None, None, False)
        return cls(
            sub.active,
            sub.billed_interval,
            sub.next_charge_at if sub.active and not sub.is_gifted else None,
            sub.paused_at,
            sub.is_gifted,
        )


def period_paid(outcome: object) -> bool:
    """Whether a period's charge (a debit under its `period_key`) left the period paid:
    applied now, or replayed from an earlier Cloud Sync charge under that key (another
    run charged it). An entry of any other kind under the key pays for nothing."""
    if isinstance(outcome, Applied):
        return True
    return (
        isinstance(outcome, Replayed)
        and outcome.entry.app_id == SYNC_APP
        and outcome.entry.amount < 0
    )


def period_key(user_id: str, period_start: datetime) -> str:
    """The ledger idempotency key of one period's charge: the unique constraint on it
    is what stops any period being charged twice, whatever runs overlap."""
    return f"sync:{user_id}:{period_start.isoformat()}"


@dataclass(frozen=True, slots=True)
class BillingReport:
    charged: int = 0
    paused: int = 0
    errors: int = 0
    total: int = 0


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What a store's set-based billing batch did."""

    processed: int
    charged: int
    paused: list[tuple[str, BillingInterval]]
