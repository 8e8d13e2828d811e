"""Two-phase debits: credits held now, then committed to the ledger or released."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .ledger import LedgerEntry, TransactionStatus, TransactionType
from .pricing import PRICING_KEY, Priced


class ReservationStatus(enum.StrEnum):
    PENDING = "pending"
    COMMITTED = "committed"
    REFUNDED = "refunded"
    EXPIRED = "expired"  # released by the time-to-live sweep


@dataclass(frozen=True, slots=True)
class Reservation:
    """Credits held out of a user's spendable balance until resolved exactly once.

    A pending reservation's amount is not spendable. Commit writes a usage entry for
    what it charges (all of it, or less: the rest goes back in the same step); refund
    and expiry give it back. A resolved reservation never changes again. `priced` is
    the price of an operation it was made for (its amount is then
    `priced.most_credits`); `charged` the credits its commit charged.
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
    priced: Priced | None = None
    charged: int | None = None


def past_ttl(reservation: Reservation, now: datetime, ttl: timedelta) -> bool:
    """Whether `reservation` was held longer than `ttl` at `now` (the sweep's rule too).

    Past it, a pending reservation counts as expired whether or not the sweep has
    released it yet: commit and refund release it instead of resolving it.
    """
    return reservation.created_at < now - ttl


@dataclass(frozen=True, slots=True)
class Hold:
    """Take `amount` out of the spendable balance into a new pending reservation."""

    reservation_id: str
    user_id: str
    amount: int
    reason: str
    app_id: str
    now: datetime
    priced: Priced | None = None


def pending_reservation(hold: Hold) -> Reservation:
    """The reservation a store writes for an accepted hold."""
    return Reservation(
        id=hold.reservation_id,
        user_id=hold.user_id,
        amount=hold.amount,
        reason=hold.reason,
        app_id=hold.app_id,
        status=ReservationStatus.PENDING,
        created_at=hold.now,
        resolved_at=None,
        transaction_id=None,
        priced=hold.priced,
    )


@dataclass(frozen=True, slots=True)
class Held:
    reservation: Reservation
    balance: int


@dataclass(frozen=True, slots=True)
class CommitHold:
    """Turn a pending reservation into a usage ledger entry.

    What it charges: `priced` set, the whole credits that cost makes due with what the
    user accrued (`pricing.accrue`); else `amount` credits (None: all that is held).
    Either is at most the reservation's amount; the rest goes back to the balance.
    """

    reservation_id: str
    entry_id: str
    description: str
    now: datetime
    amount: int | None = None
    priced: Priced | None = None


@dataclass(frozen=True, slots=True)
class ReleaseHold:
    """Give a pending reservation's credits back (refund, or expiry by the sweep)."""

    reservation_id: str
    status: ReservationStatus
    now: datetime


def committed_entry(
    reservation: Reservation,
    commit: CommitHold,
    balance: int,
    charged: int,
    accrued_milli: int | None = None,
) -> LedgerEntry:
    """The usage entry for a committed reservation that charged `charged` credits,
    given the spendable balance while the hold still stood.

    The held credits left the spendable balance at reserve time, so the entry shows the
    balance as it was with all of them (`balance + amount`) and as it is once the
    commit charged its credits and gave the rest back (`balance + amount - charged`).
    A priced commit records its pricing and `accrued_milli` after it.
    """
    metadata: dict[str, Any] = {"reservationId": reservation.id}
    if commit.priced is not None:
        metadata[PRICING_KEY] = commit.priced.record(accrued_milli or 0)
    return LedgerEntry(
        id=commit.entry_id,
        user_id=reservation.user_id,
        type=TransactionType.USAGE,
        status=TransactionStatus.COMPLETED,
        amount=-charged,
        balance_before=balance + reservation.amount,
        balance_after=balance + reservation.amount - charged,
        app_id=reservation.app_id,
        description=commit.description,
        metadata=metadata,
        idempotency_key=None,
        created_at=commit.now,
        completed_at=commit.now,
    )
