"""SQL repository for Cloud Sync subscriptions, and the billing run's batch."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.ledger import Debit
from mana_credits_core.sync import BatchOutcome, BillingInterval, SyncSubscription

from .statements import insert_for
from .tables import sync_subscriptions

s = sync_subscriptions.c


def subscription_from(row: Any) -> SyncSubscription:
    return SyncSubscription(
        user_id=row.user_id,
        active=row.active,
        interval=BillingInterval(row.interval),
        next_interval=None if row.next_interval is None else BillingInterval(row.next_interval),
        anchor_at=row.anchor_at,
        months_paid=row.months_paid,
        next_charge_at=row.next_charge_at,
        paused_at=row.paused_at,
        is_gifted=row.is_gifted,
        gifted_by=row.gifted_by,
        gifted_at=row.gifted_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def subscription_values(sub: SyncSubscription) -> dict[str, Any]:
    return {
        "user_id": sub.user_id,
        "active": sub.active,
        "interval": sub.interval.value,
        "next_interval": None if sub.next_interval is None else sub.next_interval.value,
        "anchor_at": sub.anchor_at,
        "months_paid": sub.months_paid,
        "next_charge_at": sub.next_charge_at,
        "paused_at": sub.paused_at,
        "is_gifted": sub.is_gifted,
        "gifted_by": sub.gifted_by,
        "gifted_at": sub.gifted_at,
        "created_at": sub.created_at,
        "updated_at": sub.updated_at,
    }


class SqlSync:
    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def get(self, user_id: str, *, lock: bool = False) -> SyncSubscription | None:
        query = sa.select(sync_subscriptions).where(s.user_id == user_id)
        if lock:
            query = query.with_for_update()
        row = (await self._c.execute(query)).first()
        return None if row is None else subscription_from(row)

    async def ensure(self, user_id: str, now: datetime) -> None:
        await self._c.execute(
            insert_for(self._c, sync_subscriptions)
            .values(
                user_id=user_id,
                active=False,
                interval=BillingInterval.MONTHLY.value,
                anchor_at=now,
                months_paid=0,
                is_gifted=False,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["user_id"])
        )

    async def save(self, sub: SyncSubscription) -> None:
        values = subscription_values(sub)
        del values["user_id"], values["created_at"]
        await self._c.execute(
            sa.update(sync_subscriptions).where(s.user_id == sub.user_id).values(values)
        )

    def _due(self, now: datetime) -> Any:
        return (
            s.active.is_(True),
            s.is_gifted.is_(False),
            s.next_charge_at.is_not(None),
            s.next_charge_at <= now,
        )

    async def due(self, now: datetime, limit: int) -> list[SyncSubscription]:
        query = (
            sa.select(sync_subscriptions)
            .where(*self._due(now))
            .order_by(s.next_charge_at, s.user_id)
            .limit(limit)
            # Concurrent runs take disjoint batches instead of waiting on each other.
            .with_for_update(skip_locked=True)
        )
        return [subscription_from(row) for row in await self._c.execute(query)]

    async def count_due(self, now: datetime) -> int:
        query = sa.select(sa.func.count()).select_from(sync_subscriptions).where(*self._due(now))
        return int(await self._c.scalar(query) or 0)

    async def charge_due_batch(
        self, now: datetime, limit: int, charge: Callable[[SyncSubscription], Debit]
    ) -> BatchOutcome | None:
        if self._c.dialect.name != "postgresql":
            return None  # SQLite bills row by row through the core
        # Imported here: the batch shares the debit batches' code, which imports the
        # store, which imports this module.
        from .sync_batch import charge_batch

        return await charge_batch(self._c, now, limit, charge)
