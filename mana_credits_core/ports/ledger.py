"""The ports of the money itself: balances, ledger entries, reservations, usage."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from ..ledger import (
    Balance,
    Credit,
    CreditOutcome,
    Debit,
    DebitOutcome,
    LedgerEntry,
    OperationUsage,
    UsageStat,
)
from ..reservations import CommitHold, Held, Hold, ReleaseHold, Reservation


class BalanceRepository(Protocol):
    async def get(self, user_id: str) -> Balance | None: ...

    async def ensure(self, user_id: str, now: datetime) -> Balance:
        """The user's balance, created at zero if absent; safe under concurrent calls."""
        ...

    async def debit(self, debit: Debit) -> DebitOutcome:
        """Apply a debit atomically (see `Debit`); a replayed key returns `Replayed`.

        The credits are burned from the user's lots (`lots.burn`); lots past their
        expiry are expired first, so a debit never spends expired credits."""
        ...

    async def credit(self, credit: Credit) -> CreditOutcome:
        """Apply a credit atomically, creating the balance if absent; the credits
        become one new lot (`lot_book.lot_for`)."""
        ...

    async def claw_back(self, debit: Debit) -> tuple[LedgerEntry | None, int]:
        """Take up to `debit.amount` (never below zero); the shortfall becomes debt.
        The lot of `debit.purchase_id` gives first, then the others in burn order.

        Returns the clawback entry (None if nothing could be taken) and the debt added.
        """
        ...

    async def collect_debt(self, debit: Debit) -> LedgerEntry | None:
        """Take what the user owes, as far as the balance allows (`debit.amount` ignored)."""
        ...

    async def forfeit(self, debit: Debit) -> LedgerEntry | None:
        """Take the whole spendable balance (`debit.amount` ignored) from every lot, lots
        past their expiry expired first; None when nothing is left. Raises
        `BalanceNotFound` if the user has no balance."""
        ...

    async def reinstate(self, credit: Credit) -> tuple[LedgerEntry | None, int]:
        """Give back `credit.amount` credits taken by a clawback: what the user owes is
        paid from them first, the rest is credited with one entry.

        Returns that entry (None if all went to the debt) and the debt paid. Raises
        `BalanceNotFound` if the user has no balance.
        """
        ...

    def iterate(self, batch_size: int = 1000) -> AsyncIterator[Balance]:
        """Every balance in user id order (for reconciliation)."""
        ...


class LedgerRepository(Protocol):
    async def get(self, entry_id: str) -> LedgerEntry | None: ...

    async def by_idempotency_key(self, user_id: str, key: str) -> LedgerEntry | None: ...

    async def count(self, user_id: str) -> int:
        """How many entries the user has, of any type and status."""
        ...

    async def list(
        self,
        user_id: str,
        *,
        limit: int,
        offset: int = 0,
        before: tuple[datetime, str] | None = None,
    ) -> list[LedgerEntry]:
        """Entries newest first; `before` = (created_at, id) of the last entry seen."""
        ...

    async def list_json(self, user_id: str, *, limit: int, offset: int = 0) -> bytes:
        """The entries `list` gives, as the HTTP API answers them: one compact JSON
        array in UTF-8 of the contract's Transaction shape (camelCase keys, timestamps in
        UTC with milliseconds and `Z`), byte for byte what
        `mana_credits_adapters.entry_json.entries_json` renders of them."""
        ...

    async def page_forward(
        self,
        *,
        limit: int,
        after: tuple[datetime, str] | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
    ) -> builtins.list[LedgerEntry]:
        """Entries oldest first after (created_at, id) `after`: keyset pages for export."""
        ...

    async def totals(self) -> Mapping[str, LedgerTotals]:
        """Per user: the sums of completed entries (for reconciliation)."""
        ...


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    net: int = 0
    earned: int = 0
    spent: int = 0


class ReservationRepository(Protocol):
    async def get(self, reservation_id: str) -> Reservation | None: ...

    async def hold(self, hold: Hold) -> Held | None:
        """Move credits into a pending reservation if they fit, else None (no change).

        Raises `BalanceNotFound` if the user has no balance.
        """
        ...

    async def commit(self, commit: CommitHold) -> tuple[Reservation, LedgerEntry] | None:
        """Resolve a pending reservation into a usage entry; None if not pending."""
        ...

    async def release(self, release: ReleaseHold) -> tuple[Reservation, Balance] | None:
        """Give a pending reservation's credits back; None if not pending."""
        ...

    async def expired(self, older_than: datetime, limit: int) -> list[str]:
        """Ids of pending reservations created before `older_than`."""
        ...

    async def held_by_user(self) -> Mapping[str, int]:
        """Per user: credits held by pending reservations (for reconciliation)."""
        ...


class UsageRepository(Protocol):
    async def for_user(self, user_id: str, since: datetime | None = None) -> list[UsageStat]: ...

    async def by_app_and_day(self, since: date, app_id: str | None = None) -> list[UsageStat]:
        """Usage summed over all users per app and day (`user_id` is "*"), by day."""
        ...

    async def operations_for_user(self, user_id: str) -> list[OperationUsage]:
        """The user's priced usage per operation and day, by day, then operation."""
        ...

    async def by_operation(self, since: date, operation: str | None = None) -> list[OperationUsage]:
        """Priced usage summed over all users per operation and day (`user_id` is
        "*"), by day, then operation."""
        ...
