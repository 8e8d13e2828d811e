"""SQL repository for usage statistics: credits used per user, app and day, and priced
usage per user, operation and day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.ledger import OperationUsage, UsageStat

from .statements import bytewise, insert_for
from .tables import operation_usage, usage_stats


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


async def count_operation(
    connection: AsyncConnection, key: tuple[str, str, date], counts: tuple[int, int, int]
) -> None:
    """Add (calls, quantity, milli-credits) to the priced usage row of (user id,
    operation, UTC day)."""
    user_id, operation, day = key
    calls, quantity, cost = counts
    o = operation_usage.c
    stmt = insert_for(connection, operation_usage).values(
        user_id=user_id,
        operation=operation,
        day=day,
        calls=calls,
        quantity=quantity,
        cost_milli=cost,
    )
    await connection.execute(
        stmt.on_conflict_do_update(
            index_elements=["user_id", "operation", "day"],
            set_={
                "calls": o.calls + stmt.excluded.calls,
                "quantity": o.quantity + stmt.excluded.quantity,
                "cost_milli": o.cost_milli + stmt.excluded.cost_milli,
            },
        )
    )


def _operation_usage(row: Any) -> OperationUsage:
    return OperationUsage(
        row.user_id, row.operation, row.day, int(row.calls), int(row.quantity), int(row.cost_milli)
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

    async def operations_for_user(self, user_id: str) -> list[OperationUsage]:
        o = operation_usage.c
        query = (
            sa.select(operation_usage)
            .where(o.user_id == user_id)
            .order_by(o.day, bytewise(self._c, o.operation))
        )
        return [_operation_usage(row) for row in await self._c.execute(query)]

    async def by_operation(self, since: date, operation: str | None = None) -> list[OperationUsage]:
        o = operation_usage.c
        query = (
            sa.select(
                o.operation,
                o.day,
                sa.func.sum(o.calls).label("calls"),
                sa.func.sum(o.quantity).label("quantity"),
                sa.func.sum(o.cost_milli).label("cost_milli"),
            )
            .where(o.day >= since)
            .group_by(o.day, o.operation)
            .order_by(o.day, bytewise(self._c, o.operation))
        )
        if operation is not None:
            query = query.where(o.operation == operation)
        return [
            OperationUsage(
                "*", r.operation, r.day, int(r.calls), int(r.quantity), int(r.cost_milli)
            )
            for r in await self._c.execute(query)
        ]
