"""Bodies of the Cloud Sync routes: a subscription's status, activation, interval
changes, an admin's gift and the billing run (docs/sync.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import StrictStr

from mana_credits_core.sync import BillingInterval, SyncStatus

from .models import Camel, iso


class SyncStatusOut(Camel):
    active: bool
    interval: BillingInterval
    next_charge_at: str | None
    paused_at: str | None
    gifted: bool

    @classmethod
    def of(cls, status: SyncStatus) -> SyncStatusOut:
        return cls(
            active=status.active,
            interval=status.interval,
            next_charge_at=None if status.next_charge_at is None else iso(status.next_charge_at),
            paused_at=None if status.paused_at is None else iso(status.paused_at),
            gifted=status.gifted,
        )


class IntervalBody(Camel):
    interval: StrictStr | None = None


class ChangeIntervalBody(Camel):
    interval: StrictStr


class ActivatedOut(Camel):
    success: Literal[True] = True
    active: Literal[True] = True
    interval: BillingInterval
    next_charge_at: str | None
    amount_charged: int


class SuccessOut(Camel):
    success: Literal[True] = True


class IntervalChangedOut(Camel):
    success: Literal[True] = True
    interval: BillingInterval
    amount_charged: int
    effective_at: str | None


class SyncGiftOut(Camel):
    success: Literal[True] = True
    user_id: str
    gifted: bool
    active: bool


class BillingRunOut(Camel):
    charged: int
    paused: int
    errors: int
    total: int
