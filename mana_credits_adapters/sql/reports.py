"""SQL operator reads: rankings and listings across users."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.ledger import Balance
from mana_credits_core.purchases import Purchase, PurchaseStatus

from .balances import balance_from
from .purchases import purchase_from
from .tables import balances, purchases, usage_stats


class SqlReports:
    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def top_balances(self, limit: int) -> list[Balance]:
        b = balances.c
        query = sa.select(balances).order_by(b.balance.desc(), b.user_id).limit(limit)
        return [balance_from(row) for row in await self._c.execute(query)]

    async def top_spenders(self, since: date | None, limit: int) -> list[tuple[str, int]]:
        u = usage_stats.c
        spent = sa.func.sum(u.credits_used).label("spent")
        query = sa.select(u.user_id, spent).group_by(u.user_id)
        if since is not None:
            query = query.where(u.day >= since)
        query = query.order_by(spent.desc(), u.user_id).limit(limit)
        return [(row.user_id, int(row.spent)) for row in await self._c.execute(query)]

    async def purchases(
        self,
        limit: int,
        *,
        user_id: str | None = None,
        status: PurchaseStatus | None = None,
        clawed_back: bool = False,
    ) -> list[Purchase]:
        p = purchases.c
        query = sa.select(purchases).order_by(p.created_at.desc(), p.id.desc()).limit(limit)
        if user_id is not None:
            query = query.where(p.user_id == user_id)
        if status is not None:
            query = query.where(p.status == status.value)
        if clawed_back:
            query = query.where(p.clawed_back > 0)
        return [purchase_from(row) for row in await self._c.execute(query)]
