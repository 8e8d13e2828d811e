"""SQL repository for usage statistics: credits used per user, app and day."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.ledger import UsageStat

from .statements import insert_for
from .tables import usage_stats


async def count_usage(
    connection: AsyncConnection, key: tuple[str, str, date], credits: int, operations: int
) -> None:
    """Add `credits` and `operations` to the usage row of (user id, app id, UTC day)."""
    user_id, app_id, day = key
    stmt = insert_for(connection, usage_stats).values(
        user_id=user_id, app_id=app_id, day=day, credits_used=credits, operations=operations
    )
    await connection.execute(
        stmt.on_conflict_do_update(
            index_elements=["user_id", "app_id", "day"],
            set_={
                "credits_used": usage_stats.c.credits_used + stmt.excluded.credits_used,
                "operations": usage_stats.c.operations + stmt.excluded.operations,
            },
        )
    )


class SqlUsage:
    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def for_user(self, user_id: str, since: datetime | None = None) -> list[UsageStat]:
        u = usage_stats.c
        query = sa.select(usage_stats).where(u.user_id == user_id).order_by(u.day, u.app_id)
        if since is not None:
            query = query.where(u.day >= since.date())
        return [
            UsageStat(r.user_id, r.app_id, r.day, r.credits_used, r.operations)
            for r in await self._c.execute(query)
        ]

    async def by_app_and_day(self, since: date, app_id: str | None = None) -> list[UsageStat]:
        u = usage_stats.c
        query = (
            sa.select(
                u.app_id,
                u.day,
                sa.func.sum(u.credits_used).label("credits"),
                sa.func.sum(u.operations).label("operations"),
            )
            .where(u.day >= since)
            .group_by(u.app_id, u.day)
            .order_by(u.day, u.app_id)
        )
        if app_id is not None:
            query = query.where(u.app_id == app_id)
        return [
            UsageStat("*", r.app_id, r.day, int(r.credits), int(r.operations))
            for r in await self._c.execute(query)
        ]
