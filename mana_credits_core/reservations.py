"""Two-phase debits: credits held now, then committed to the ledger or released."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class ReservationStatus(enum.StrEnum):
    PENDING = "pending"
    COMMITTED = "committed"
    REFUNDED = "refunded"
    EXPIRED = "expired"  # released by the time-to-live sweep


@dataclass(frozen=True, slots=True)
class Reservation:
    """Credits held out of a user's spendable balance until resolved exactly once.

    A pending reservation's amount is not spendable. Commit writes a usage entry for
    it; refund and expiry give it back. A resolved reservation never changes again.
    """

    id: str
    user_id: str
    amount: int
    reason: str
    app_id: str
    status: ReservationStatus
    created_at: datetime
    resolved_at: datetime | None
    transaction_id: str | None


@dataclass(frozen=True, slots=True)
class Hold:
    """Take `amount` out of the spendable balance into a new pending reservation."""

    reservation_id: str
    user_id: str
    amount: int
    reason: str
    app_id: str
    now: datetime


@dataclass(frozen=True, slots=True)
class Held:
    reservation: Reservation
    balance: int


@dataclass(frozen=True, slots=True)
class CommitHold:
    """Turn a pending reservation into a usage ledger entry."""

    reservation_id: str
    entry_id: str
    description: str
    now: datetime


@dataclass(frozen=True, slots=True)
class ReleaseHold:
    """Give a pending reservation's credits back (refund, or expiry by the sweep)."""

    reservation_id: str
    status: ReservationStatus
    now: datetime
