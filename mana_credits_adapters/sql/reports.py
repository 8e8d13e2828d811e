"""SQL operator reads: rankings and listings across users."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.gifts import GiftStatus
from mana_credits_core.ledger import Balance
from mana_credits_core.ports import StoreTotals
from mana_credits_core.purchases import Purchase, PurchaseStatus
from mana_credits_core.reservations import ReservationStatus

from .balances import balance_from
from .purchases import purchase_from
from .tables import (
    balances,
    gift_codes,
    purchases,
    reservations,
    sync_subscriptions,
    usage_stats,
)


def _total(value: Any) -> sa.ColumnElement[Any]:
    """SUM that reads 0 over no rows, not NULL."""
    return sa.func.coalesce(sa.func.sum(value), 0)


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return _total(sa.case((condition, 1), else_=0))


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

    async def totals(self, completed_since: datetime) -> StoreTotals:
        # One aggregate row per table, cross-joined: one statement, one round trip.
        b, p, r, y, g = (
            balances.c,
            purchases.c,
            reservations.c,
            sync_subscriptions.c,
            gift_codes.c,
        )
        paid = p.status == PurchaseStatus.COMPLETED.value
        parts = [
            sa.select(
                _total(b.balance).label("balances"),
                _total(b.debt).label("debt"),
                sa.func.count().label("users"),
            ),
            sa.select(_total(r.amount).label("held")).where(
                r.status == ReservationStatus.PENDING.value
            ),
            sa.select(
                sa.func.count().label("purchases"),
                _total(p.credits).label("purchased_credits"),
                _total(p.price_euro_cents).label("purchased_euro_cents"),
                _total(p.clawed_back).label("purchased_clawed_back"),
            ).where(paid, p.completed_at >= completed_since),
            sa.select(
                _count(y.active & ~y.is_gifted).label("sync_active"),
                _count(~y.active & y.paused_at.is_not(None)).label("sync_paused"),
                _count(y.active & y.is_gifted).label("sync_gifted"),
            ),
            sa.select(
                sa.func.count().label("gifts_active"),
                _total(g.total_credits).label("gift_credits"),
            ).where(g.status == GiftStatus.ACTIVE.value),
        ]
        subqueries = [part.subquery() for part in parts]
        joined: sa.FromClause = subqueries[0]
        for sub in subqueries[1:]:
            joined = joined.join(sub, sa.true())
        columns = [column for sub in subqueries for column in sub.c]
        row = (await self._c.execute(sa.select(*columns).select_from(joined))).one()
        return StoreTotals(**{c.name: int(value) for c, value in zip(columns, row, strict=True)})
