"""The in-memory store's operator reads (rankings, listings across users)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import TYPE_CHECKING

from mana_credits_core.ledger import Balance
from mana_credits_core.purchases import Purchase, PurchaseStatus

if TYPE_CHECKING:
    from .memory import MemoryState


class MemoryReports:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    async def top_balances(self, limit: int) -> list[Balance]:
        ranked = sorted(self._s.balances.values(), key=lambda b: (-b.balance, b.user_id))
        return ranked[:limit]

    async def top_spenders(self, since: date | None, limit: int) -> list[tuple[str, int]]:
        spent: dict[str, int] = defaultdict(int)
        for u in self._s.usage.values():
            if since is None or u.day >= since:
                spent[u.user_id] += u.credits_used
        return sorted(spent.items(), key=lambda pair: (-pair[1], pair[0]))[:limit]

    async def purchases(
        self,
        limit: int,
        *,
        user_id: str | None = None,
        status: PurchaseStatus | None = None,
        clawed_back: bool = False,
    ) -> list[Purchase]:
        found = [
            p
            for p in self._s.purchases.values()
            if (user_id is None or p.user_id == user_id)
            and (status is None or p.status == status)
            and (not clawed_back or p.clawed_back > 0)
        ]
        found.sort(key=lambda p: (p.created_at, p.id), reverse=True)
        return found[:limit]
