"""Credit lots: every credit added is a lot with its own amount left, priority and
optional expiry, and a debit burns lots down in one fixed order.

The vocabulary and the order follow Stripe's credit grants (a grant's `priority`,
0 to 100, lower values applied first: Stripe API changelog 2025-02-24.acacia) and the
burn-down of OpenMeter and Stigg (priority, then the soonest expiry, non-expiring last,
then the oldest). Pure functions: the stores keep the lots and apply what these decide.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from .errors import InvalidInput

DEFAULT_PRIORITY = 50
"""A lot's priority when none is given: the middle of the range, so that an operator can
order a lot before (0..49) or after (51..100) every ordinary one."""
MIN_PRIORITY, MAX_PRIORITY = 0, 100
EXPIRY_NOTICE = timedelta(days=7)
"""How long before a lot expires its owner is told, once."""


class LotSource(enum.StrEnum):
    """What created a lot (the credit entry's reason)."""

    PURCHASE = "purchase"  # paid for: never expires unless its package says so
    GRANT = "grant"  # an operator's grant or a service's reward
    GIFT = "gift"  # a redeemed gift code
    REFUND = "refund"  # credits refunded to the user
    RETURN = "return"  # a cancelled gift or Sync period giving credits back
    REINSTATEMENT = "reinstatement"  # credits given back after a won dispute or failed refund
    OPENING = "opening"  # the legacy import's one lot per user


@dataclass(frozen=True, slots=True)
class Lot:
    """Credits added at once, and what is left of them.

    `amount` and `remaining` are credits (0 <= remaining <= amount); `priority` 0..100,
    lower burned first; `expires_at` None for credits that never expire. `held` is the
    part of `remaining` set aside by pending reservations: not spendable, and not
    expired while held. `entry_id` is the credit entry that created the lot (None for an
    opening lot), `purchase_id` the purchase it was paid by, `expired_at` when its free
    part expired (set once).
    """

    id: str
    user_id: str
    source: LotSource
    amount: int
    remaining: int
    priority: int
    expires_at: datetime | None
    created_at: datetime
    held: int = 0
    entry_id: str | None = None
    purchase_id: str | None = None
    expired_at: datetime | None = None

    @property
    def free(self) -> int:
        """Credits of the lot that a debit or a hold may take now (before expiry)."""
        return self.remaining - self.held

    def spent(self, credits: int) -> Lot:
        """This lot with `credits` fewer remaining. Built field by field: on a debit's
        path `dataclasses.replace` took a third of the lot book's time."""
        return Lot(
            id=self.id,
            user_id=self.user_id,
            source=self.source,
            amount=self.amount,
            remaining=self.remaining - credits,
            priority=self.priority,
            expires_at=self.expires_at,
            created_at=self.created_at,
            held=self.held,
            entry_id=self.entry_id,
            purchase_id=self.purchase_id,
            expired_at=self.expired_at,
        )

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class Allocation:
    """`amount` credits of lot `lot_id` taken by one ledger entry or hold."""

    lot_id: str
    amount: int


def burn_key(lot: Lot) -> tuple[int, bool, datetime, datetime, str]:
    """The burn order: lower priority first, then the soonest expiry (lots that never
    expire last), then the oldest, then the id (a total order, so ties are stable)."""
    never = lot.expires_at is None
    return (lot.priority, never, lot.expires_at or lot.created_at, lot.created_at, lot.id)


def spendable(lots: Iterable[Lot], now: datetime) -> list[Lot]:
    """Lots a debit may take from at `now`, in burn order: free credits, not expired."""
    return sorted((lot for lot in lots if lot.free > 0 and not lot.expired(now)), key=burn_key)


def burn(lots: Iterable[Lot], amount: int, now: datetime) -> list[Allocation] | None:
    """Which lots pay `amount` credits at `now`, in burn order; None if the spendable
    credits do not cover it (nothing is taken then). Raises ValueError for an amount
    below 1."""
    if amount < 1:
        raise ValueError("a burn takes at least 1 credit")
    taken: list[Allocation] = []
    needed = amount
    for lot in spendable(lots, now):
        part = min(lot.free, needed)
        taken.append(Allocation(lot.id, part))
        needed -= part
        if needed == 0:
            return taken
    return None


def claw_back(
    lots: Iterable[Lot], amount: int, now: datetime, first: str | None = None
) -> tuple[list[Allocation], int]:
    """Take up to `amount` credits back: from lot `first` (the refunded purchase's)
    first, then in burn order. Returns what each lot gives and the credits that were
    already spent (the debt). Held credits stay with their holds."""
    ordered = spendable(lots, now)
    ordered.sort(key=lambda lot: lot.id != first)  # stable: the rest keep burn order
    taken: list[Allocation] = []
    needed = amount
    for lot in ordered:
        if needed == 0:
            break
        part = min(lot.free, needed)
        taken.append(Allocation(lot.id, part))
        needed -= part
    return taken, needed


def expiring(lots: Iterable[Lot], now: datetime) -> list[Allocation]:
    """What expires at `now`: the free part of every lot past its expiry (held credits
    expire when their hold is released)."""
    return [Allocation(lot.id, lot.free) for lot in lots if lot.expired(now) and lot.free > 0]


def to_notify(lots: Iterable[Lot], now: datetime) -> list[Lot]:
    """Lots expiring within `EXPIRY_NOTICE` of `now` with credits left (the store
    records the notice so that each lot is announced once)."""
    return [
        lot
        for lot in lots
        if lot.expires_at is not None
        and now < lot.expires_at <= now + EXPIRY_NOTICE
        and lot.remaining > 0
    ]


@dataclass(frozen=True, slots=True)
class ExpiryNotice:
    """One notice to a user: `credits` of their lots `lot_ids` expire on one day (UTC),
    the first of them at `expires_at`."""

    user_id: str
    credits: int
    expires_at: datetime
    lot_ids: tuple[str, ...]


def expiry_notices(lots: Iterable[Lot]) -> list[ExpiryNotice]:
    """The notices announcing `lots` (each with an expiry): one per user and day of
    expiry (UTC), so that a user hears once of several lots expiring the same day.
    Counts each lot's `remaining` credits (held ones expire too if their hold is
    released). Ordered by expiry, then user."""
    days: dict[tuple[str, date], list[Lot]] = {}
    for lot in lots:
        if lot.expires_at is None:
            raise ValueError(f"lot {lot.id} never expires")
        days.setdefault((lot.user_id, lot.expires_at.astimezone(UTC).date()), []).append(lot)
    notices = [
        ExpiryNotice(
            user_id=user_id,
            credits=sum(lot.remaining for lot in group),
            expires_at=min(lot.expires_at for lot in group if lot.expires_at is not None),
            lot_ids=tuple(sorted(lot.id for lot in group)),
        )
        for (user_id, _), group in days.items()
    ]
    return sorted(notices, key=lambda n: (n.expires_at, n.user_id))


def crossed_low(before: int, after: int, threshold: int) -> bool:
    """Whether a debit took the spendable balance from at or above `threshold` (credits)
    to below it: the moment the owner is told, once per crossing."""
    return before >= threshold > after


def priority(value: object) -> int:
    """A lot's priority from input: `DEFAULT_PRIORITY` when absent. Raises
    `InvalidInput` (field `priority`) for anything but an integer (not a bool) in
    0..100."""
    if value is None:
        return DEFAULT_PRIORITY
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("priority", "priority must be an integer")
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise InvalidInput("priority", f"priority must be {MIN_PRIORITY}..{MAX_PRIORITY}")
    return value


MAX_EXPIRY = timedelta(days=3660)
"""The furthest a lot's expiry may lie ahead (about ten years, as the CLI's
`--expires-in`): credits meant to last longer should not expire at all, and a bound
keeps every expiry a storable UTC moment (year 9999 with a negative offset is not)."""


def expiry(value: object, now: datetime, *, purchased: bool = False) -> datetime | None:
    """When credits granted at `now` expire, from input: None (never) or an aware
    datetime after `now` and at most `MAX_EXPIRY` (3,660 days) later, returned in UTC.
    Purchased credits never expire. Raises `InvalidInput` (field `expiresAt`)."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput("expiresAt", "expiresAt must be a date and time with a time zone")
    if purchased:
        raise InvalidInput("expiresAt", "purchased credits never expire")
    try:
        moment = value.astimezone(UTC)
    except OverflowError:  # past year 9999 once in UTC
        moment = None
    if moment is None or moment > now + MAX_EXPIRY:
        raise InvalidInput(
            "expiresAt", f"expiresAt must be at most {MAX_EXPIRY.days} days ahead, or absent"
        )
    if moment <= now:
        raise InvalidInput("expiresAt", "expiresAt must be in the future")
    return moment


def total(allocations: Sequence[Allocation]) -> int:
    return sum(a.amount for a in allocations)


_IDS = uuid.UUID("0b5f8a52-6c1e-4d0a-9f3e-2a7c4e1d9b60")


def derived_id(name: str) -> str:
    """A stable id (UUID 5) for something the stores create themselves: every store,
    every run and every retry derive the same id, so it is written at most once."""
    return str(uuid.uuid5(_IDS, name))


def opening_lot_id(user_id: str) -> str:
    """The id of a user's opening lot (the same wherever and however often made)."""
    return derived_id(f"opening:{user_id}")


def opening_lot(user_id: str, amount: int, held: int, created_at: datetime) -> Lot:
    """The one lot holding the credits of a balance that predates lots (an upgraded
    database, the legacy import): `amount` credits (balance plus held), `held` of them
    held by pending reservations, never expiring, of default priority. Its id derives
    from the user id."""
    return Lot(
        id=opening_lot_id(user_id),
        user_id=user_id,
        source=LotSource.OPENING,
        amount=amount,
        remaining=amount,
        priority=DEFAULT_PRIORITY,
        expires_at=None,
        created_at=created_at,
        held=held,
    )
