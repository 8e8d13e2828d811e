"""The in-memory store's operator reads (rankings, listings across users)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import TYPE_CHECKING

from mana_credits_core.gifts import GiftStatus
from mana_credits_core.ledger import Balance
from mana_credits_core.ports import StoreTotals
from mana_credits_core.purchases import Purchase, PurchaseStatus
from mana_credits_core.reservations import ReservationStatus

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

    async def totals(self, completed_since: datetime) -> StoreTotals:
        s = self._s
        sold = [
            p
            for p in s.purchases.values()
            if p.status == PurchaseStatus.COMPLETED
            and p.completed_at is not None
            and p.completed_at >= completed_since
        ]
        gifts = [g for g in s.gifts.values() if g.status == GiftStatus.ACTIVE]
        sync = list(s.sync.values())
        return StoreTotals(
            balances=sum(b.balance for b in s.balances.values()),
            held=sum(
                r.amount for r in s.reservations.values() if r.status == ReservationStatus.PENDING
            ),
            debt=sum(b.debt for b in s.balances.values()),
            users=len(s.balances),
            purchases=len(sold),
            purchased_credits=sum(p.credits for p in sold),
            purchased_euro_cents=sum(p.price_euro_cents for p in sold),
            purchased_clawed_back=sum(p.clawed_back for p in sold),
            sync_active=sum(1 for x in sync if x.active and not x.is_gifted),
            sync_paused=sum(1 for x in sync if not x.active and x.paused_at is not None),
            sync_gifted=sum(1 for x in sync if x.active and x.is_gifted),
            gifts_active=len(gifts),
            gift_credits=sum(g.total_credits for g in gifts),
        )
