"""The port of operator reads across all users."""

from __future__ import annotations

from datetime import date
from typing import Protocol

from ..ledger import Balance
from ..purchases import Purchase, PurchaseStatus


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
