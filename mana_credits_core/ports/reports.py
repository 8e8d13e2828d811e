"""The port of operator reads across all users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from ..ledger import Balance
from ..purchases import Purchase, PurchaseStatus


@dataclass(frozen=True, slots=True)
class StoreTotals:
    """Figures over the whole store, read at once for the operator overview.

    `balances`: credits in every balance (spendable); `held`: credits set aside by
    pending reservations; `debt`: credits owed by users after claw-backs; `users`:
    balance rows. `purchases`, `purchased_credits`, `purchased_euro_cents`: purchases
    completed at or after the moment asked about, their credits and their price (euro
    cents); `purchased_clawed_back`: the credits taken back from those same purchases
    since (refunds, lost disputes). `sync_active` (paid and running), `sync_paused`
    (paused because a charge did not fit), `sync_gifted` (running and gifted): Cloud
    Sync subscriptions.
    `gifts_active`: gift codes not redeemed, cancelled or expired yet, and
    `gift_credits` the credits they hold in escrow."""

    balances: int = 0
    held: int = 0
    debt: int = 0
    users: int = 0
    purchases: int = 0
    purchased_credits: int = 0
    purchased_euro_cents: int = 0
    purchased_clawed_back: int = 0
    sync_active: int = 0
    sync_paused: int = 0
    sync_gifted: int = 0
    gifts_active: int = 0
    gift_credits: int = 0


class ReportRepository(Protocol):
    """Operator reads across all users: rankings and listings."""

    async def top_balances(self, limit: int) -> list[Balance]:
        """The `limit` largest balances, largest first (ties by user id)."""
        ...

    async def top_spenders(self, since: date | None, limit: int) -> list[tuple[str, int]]:
        """(user id, credits used by apps) from day `since` on (None: ever), most first,
        ties by user id; credits held for gift codes and claw-backs are not spending."""
        ...

    async def purchases(
        self,
        limit: int,
        *,
        user_id: str | None = None,
        status: PurchaseStatus | None = None,
        clawed_back: bool = False,
    ) -> list[Purchase]:
        """Purchases of every user, newest first (ties by id, descending), optionally of
        one user or status; `clawed_back`: only those whose credits were taken back, in
        part or in full (`clawed_back` > 0)."""
        ...

    async def totals(self, completed_since: datetime) -> StoreTotals:
        """The store's figures (`StoreTotals`), purchases counted when completed at or
        after `completed_since`; one statement on SQL stores."""
        ...
