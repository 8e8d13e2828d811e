"""The port of credit lots: reads, the expiry sweep's writes, reconciliation's sums."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..ledger import LedgerEntry
from ..lots import Allocation, Lot


@dataclass(frozen=True, slots=True)
class LotTotals:
    """One user's lots summed: credits left in them, and of those held (credits)."""

    remaining: int = 0
    held: int = 0


@dataclass(frozen=True, slots=True)
class LotDrift:
    """One ledger entry or reservation whose lots disagree with it (reconciliation):
    `subject` names it, `check` the rule, `expected` and `found` the credits."""

    user_id: str
    subject: str
    check: str
    expected: int
    found: int


@dataclass(frozen=True, slots=True)
class Expiring:
    """Credits due to expire by some moment: `credits` the free credits of the lots
    concerned, `users` how many users own them, `lots` how many lots."""

    credits: int = 0
    users: int = 0
    lots: int = 0


class LotRepository(Protocol):
    async def of_user(self, user_id: str) -> list[Lot]:
        """Every lot of the user, spent ones included, oldest first (then by id)."""
        ...

    async def allocations(self, entry_id: str) -> list[Allocation]:
        """Which lots paid the debit entry `entry_id`, and how much each, by lot id."""
        ...

    async def holds(self, reservation_id: str) -> list[Allocation]:
        """Which lots a pending reservation holds credits of, by lot id (none once it
        is resolved)."""
        ...

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Users with a lot past its expiry at `now` whose free credits have not
        expired yet (at most `limit` lots looked at, soonest expiry first; so at most
        `limit` users, each once)."""
        ...

    async def expiring(self, until: datetime) -> Expiring:
        """The free credits (remaining less held) of every lot expiring at or before
        `until` whose credits have not expired yet, summed over all users."""
        ...

    async def expire(self, user_ids: Sequence[str], now: datetime) -> list[LedgerEntry]:
        """Lock the users' balances (in user id order, as every writer does) and expire
        the free credits of each of their lots past its expiry: one `expire` entry per
        lot, exactly once per lot (concurrent sweeps and debits included). Users
        without a balance are passed over. Returns the entries written now.

        Raises `LotsOutOfStep` if any one user's stored lots disagree with their
        balance; nothing is decided then, and the unit of work must be rolled back."""
        ...

    async def notice_due(self, now: datetime, limit: int) -> list[str]:
        """Users with a lot that expires within `lots.EXPIRY_NOTICE` after `now`, has
        credits left and was not announced yet (at most `limit` lots looked at,
        soonest expiry first)."""
        ...

    async def claim_notices(self, user_id: str, now: datetime) -> list[Lot]:
        """Mark the user's lots due for an expiry notice at `now` (those `notice_due`
        finds) as announced at `now`, by one conditional write (`notified_at` still
        unset), and return the lots this call marked: of two calls at once, each lot
        goes to one of them only."""
        ...

    async def release_notices(self, lot_ids: Sequence[str], claimed_at: datetime) -> None:
        """Unmark the lots `claim_notices` marked at `claimed_at` (a notice that could
        not be sent), so that a later sweep announces them again. A lot marked at
        another moment is left alone."""
        ...

    async def totals(self) -> Mapping[str, LotTotals]:
        """Per user: the sums over their lots (for reconciliation)."""
        ...

    async def drifts(self, limit: int) -> list[LotDrift]:
        """Up to `limit` entries and reservations whose lots disagree with them: a debit
        entry whose allocations do not sum to its amount, a credit entry without
        exactly one lot of its amount, a pending reservation whose holds do not sum to
        it. Entries up to a balance's `lots_since` (from before lots) are not checked."""
        ...
