"""SQL repository for the price list and its changes (`mana_credits_core.pricing`)."""

from __future__ import annotations

import builtins
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.errors import Conflict
from mana_credits_core.pricing import Price, PriceAction, PriceChange

from .statements import bytewise, insert_for
from .tables import price_changes, prices

p = prices.c


def price_from(row: Any) -> Price:
    return Price(
        operation=row.operation,
        app_id=row.app_id,
        name=row.name,
        description=row.description,
        price_milli=row.price_milli,
        unit=row.unit,
        unit_size=row.unit_size,
        created_at=row.created_at,
        updated_at=row.updated_at,
        retired_at=row.retired_at,
    )


def price_values(price: Price) -> dict[str, Any]:
    return {
        "operation": price.operation,
        "app_id": price.app_id,
        "name": price.name,
        "description": price.description,
        "price_milli": price.price_milli,
        "unit": price.unit,
        "unit_size": price.unit_size,
        "created_at": price.created_at,
        "updated_at": price.updated_at,
        "retired_at": price.retired_at,
    }


def change_from(row: Any) -> PriceChange:
    return PriceChange(
        id=row.id,
        operation=row.operation,
        action=PriceAction(row.action),
        old_price_milli=row.old_price_milli,
        new_price_milli=row.new_price_milli,
        operator=row.operator,
        reason=row.reason,
        at=row.at,
        before=dict(row.before or {}),
    )


class SqlPrices:
    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def list(self, *, include_retired: bool = False) -> builtins.list[Price]:
        query = sa.select(prices).order_by(
            bytewise(self._c, p.app_id), bytewise(self._c, p.operation)
        )
        if not include_retired:
            query = query.where(p.retired_at.is_(None))
        return [price_from(row) for row in await self._c.execute(query)]

    async def get(self, operation: str) -> Price | None:
        row = (await self._c.execute(sa.select(prices).where(p.operation == operation))).first()
        return None if row is None else price_from(row)

    async def lock(self, operation: str) -> Price | None:
        # FOR UPDATE on PostgreSQL; SQLite writers are serialised by BEGIN IMMEDIATE.
        query = sa.select(prices).where(p.operation == operation).with_for_update()
        row = (await self._c.execute(query)).first()
        return None if row is None else price_from(row)

    async def put(self, price: Price, change: PriceChange) -> None:
        values = price_values(price)
        done: Any
        if change.old_price_milli is None:
            # A new operation: the primary key decides between two units of work that
            # add the same one (the loser's lock found no row to wait on).
            # RETURNING rather than rowcount: a conflict returns no row on every driver.
            added = await self._c.scalar(
                insert_for(self._c, prices)
                .values(values)
                .on_conflict_do_nothing(index_elements=["operation"])
                .returning(p.operation)
            )
            if added is None:
                raise Conflict(f"operation {price.operation} was added meanwhile; try again")
        else:
            done = await self._c.execute(
                sa.update(prices).where(p.operation == price.operation).values(values)
            )
            if not done.rowcount:
                raise Conflict(f"operation {price.operation} changed meanwhile; try again")
        await self._c.execute(
            sa.insert(price_changes).values(
                id=change.id,
                operation=change.operation,
                action=change.action.value,
                old_price_milli=change.old_price_milli,
                new_price_milli=change.new_price_milli,
                operator=change.operator,
                reason=change.reason,
                at=change.at,
                before=change.before,
            )
        )

    async def changes(
        self, operation: str | None = None, limit: int = 100
    ) -> builtins.list[PriceChange]:
        c = price_changes.c
        query = sa.select(price_changes).order_by(c.at.desc(), c.id.desc()).limit(limit)
        if operation is not None:
            query = query.where(c.operation == operation)
        return [change_from(row) for row in await self._c.execute(query)]
