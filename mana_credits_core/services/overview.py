"""The operator overview: what the service owes, sold and saw used, in one read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from ..errors import InvalidInput
from ..ledger import UsageStat
from ..ports import Clock, Expiring, Store
from .reconcile_watch import ReconcileStatus, ReconcileWatch

MAX_OVERVIEW_DAYS = 3660
"""The longest window of `overview` (about ten years), as the usage report."""
EXPIRING_WITHIN = timedelta(days=30)
"""How far ahead the overview counts credits expiring."""


@dataclass(frozen=True, slots=True)
class Overview:
    """The service's state for operators, all amounts in credits unless named cents.

    Owed to users: `balances` (spendable credits in every balance) and `held` (credits
    set aside by pending reservations); `outstanding` is their sum. `debt`: credits
    users owe after claw-backs. `users`: balances held.

    Over the window (`days` UTC days up to `as_of`, today included, from `since` at
    00:00 UTC): `purchases` completed, `credits_sold` their credits and
    `euro_cents_sold` their price (euro cents), `credits_clawed_back` the credits taken
    back from those purchases since (refunds, lost disputes); `credits_used` what apps
    used, and
    `usage` the same per app and day (days without usage absent), sorted by day then
    app.

    Now: Cloud Sync subscriptions `sync_active` (paid, running), `sync_paused` (paused
    because a charge did not fit), `sync_gifted` (gifted, running); `gifts_active`
    gift codes not redeemed yet and `gift_credits` the credits they hold in escrow;
    `expiring` the free credits due to expire within 30 days (`EXPIRING_WITHIN`);
    `reconcile` this process's last reconcile run (None before the first).
    """

    as_of: datetime
    days: int
    since: date
    balances: int
    held: int
    debt: int
    users: int
    purchases: int
    credits_sold: int
    euro_cents_sold: int
    credits_clawed_back: int
    credits_used: int
    sync_active: int
    sync_paused: int
    sync_gifted: int
    gifts_active: int
    gift_credits: int
    expiring: Expiring
    reconcile: ReconcileStatus | None
    usage: tuple[UsageStat, ...]

    @property
    def outstanding(self) -> int:
        """Credits the service owes users: spendable plus held."""
        return self.balances + self.held


class OverviewService:
    """Reads the operator overview (three reads: the store's totals, usage per app and
    day, credits expiring) and adds the last reconcile status of `watch`."""

    def __init__(self, store: Store, clock: Clock, watch: ReconcileWatch | None = None) -> None:
        self._store = store
        self._clock = clock
        self._watch = watch

    async def overview(self, days: int = 30) -> Overview:
        """The overview over the last `days` days (1..`MAX_OVERVIEW_DAYS`, today
        included). Reads only. Raises `InvalidInput` (field `days`)."""
        if (
            isinstance(days, bool)
            or not isinstance(days, int)
            or not 1 <= days <= MAX_OVERVIEW_DAYS
        ):
            raise InvalidInput("days", f"days must be 1..{MAX_OVERVIEW_DAYS}")
        now = self._clock.now()
        since = (now - timedelta(days=days - 1)).date()
        async with self._store.reader() as reader:
            totals = await reader.reports.totals(datetime.combine(since, time(), UTC))
            usage = await reader.usage.by_app_and_day(since)
            expiring = await reader.lots.expiring(now + EXPIRING_WITHIN)
        return Overview(
            as_of=now,
            days=days,
            since=since,
            balances=totals.balances,
            held=totals.held,
            debt=totals.debt,
            users=totals.users,
            purchases=totals.purchases,
            credits_sold=totals.purchased_credits,
            euro_cents_sold=totals.purchased_euro_cents,
            credits_clawed_back=totals.purchased_clawed_back,
            credits_used=sum(s.credits_used for s in usage),
            sync_active=totals.sync_active,
            sync_paused=totals.sync_paused,
            sync_gifted=totals.sync_gifted,
            gifts_active=totals.gifts_active,
            gift_credits=totals.gift_credits,
            expiring=expiring,
            reconcile=None if self._watch is None else self._watch.last,
            usage=tuple(usage),
        )
