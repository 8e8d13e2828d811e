"""SQL repository for Cloud Sync subscriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

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

    async def charge_due_batch(self, now: datetime, limit: int, app_id: str) -> BatchOutcome | None:
        if self._c.dialect.name != "postgresql":
            return None  # SQLite bills row by row through the core
        return await pg_charge_due_batch(self._c, now, limit, app_id)


# One billing batch on PostgreSQL in one statement: lock due rows (skipping rows another
# run holds), debit the ones whose balance covers the price, write their ledger entries
# under the period's unique key, count usage, advance their calendar, pause the rest.
# Prices, months and the key format come from the core as parameters; PostgreSQL's
# month arithmetic on the UTC anchor clamps to month ends exactly like `add_months`.
PG_CHARGE_BATCH = sa.text(
    """
WITH due AS (
    SELECT s.user_id, s.anchor_at, s.months_paid, s.next_charge_at,
           COALESCE(s.next_interval, s.interval) AS billed
      FROM credits.sync_subscriptions s
     WHERE s.active AND NOT s.is_gifted AND s.next_charge_at <= :now
     ORDER BY s.next_charge_at, s.user_id
     LIMIT :limit
       FOR UPDATE SKIP LOCKED
),
priced AS (
    SELECT d.*,
           CASE d.billed WHEN 'monthly' THEN :price_monthly
                         WHEN 'quarterly' THEN :price_quarterly ELSE :price_yearly END AS price,
           CASE d.billed WHEN 'monthly' THEN :months_monthly
                         WHEN 'quarterly' THEN :months_quarterly ELSE :months_yearly END AS months,
           to_char(d.next_charge_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
             || CASE WHEN extract(microseconds FROM d.next_charge_at)::bigint % 1000000 = 0
                     THEN '' ELSE to_char(d.next_charge_at AT TIME ZONE 'UTC', '.US') END
             || '+00:00' AS period_start
      FROM due d
),
locked AS (
    -- Balance rows are locked in user order, as debit batches lock them: the two
    -- never wait on each other in a cycle.
    SELECT b.user_id FROM credits.balances b
     WHERE b.user_id IN (SELECT user_id FROM due)
     ORDER BY b.user_id
       FOR UPDATE
),
debited AS (
    UPDATE credits.balances b
       SET balance = b.balance - p.price, total_spent = b.total_spent + p.price,
           updated_at = :now
      FROM priced p JOIN locked l USING (user_id)
     WHERE b.user_id = p.user_id AND b.balance >= p.price
 RETURNING b.user_id, b.balance
),
entries AS (
    INSERT INTO credits.transactions
        (id, user_id, type, status, amount, balance_before, balance_after, app_id,
         description, metadata, idempotency_key, created_at, completed_at)
    SELECT gen_random_uuid()::text, d.user_id, 'usage', 'completed', -p.price,
           d.balance + p.price, d.balance, :app_id, 'Cloud Sync (' || p.billed || ')',
           jsonb_build_object('interval', p.billed, 'periodStart', p.period_start),
           'sync:' || d.user_id || ':' || p.period_start, :now, :now
      FROM debited d JOIN priced p USING (user_id)
),
usage AS (
    INSERT INTO credits.usage_stats AS u (user_id, app_id, day, credits_used, operations)
    SELECT d.user_id, :app_id, CAST(:day AS date), p.price, 1
      FROM debited d JOIN priced p USING (user_id)
    ON CONFLICT (user_id, app_id, day) DO UPDATE
       SET credits_used = u.credits_used + EXCLUDED.credits_used,
           operations = u.operations + 1
),
advanced AS (
    UPDATE credits.sync_subscriptions s
       SET interval = p.billed, next_interval = NULL, months_paid = p.months_paid + p.months,
           next_charge_at = ((p.anchor_at AT TIME ZONE 'UTC')
                             + make_interval(months => p.months_paid + p.months))
                            AT TIME ZONE 'UTC',
           updated_at = :now
      FROM priced p
     WHERE s.user_id = p.user_id AND p.user_id IN (SELECT user_id FROM debited)
 RETURNING s.user_id
),
paused AS (
    UPDATE credits.sync_subscriptions s
       SET active = false, paused_at = :now, next_charge_at = NULL, updated_at = :now
      FROM priced p
     WHERE s.user_id = p.user_id AND p.user_id NOT IN (SELECT user_id FROM debited)
 RETURNING s.user_id, p.billed
)
SELECT 'charged' AS outcome, user_id, NULL AS billed FROM advanced
UNION ALL
SELECT 'paused', user_id, billed FROM paused
"""
)


async def pg_charge_due_batch(
    connection: AsyncConnection, now: datetime, limit: int, app_id: str
) -> BatchOutcome:
    params: dict[str, Any] = {"now": now, "limit": limit, "app_id": app_id, "day": now.date()}
    for interval in BillingInterval:
        params[f"price_{interval.value}"] = interval.price
        params[f"months_{interval.value}"] = interval.months
    rows = (await connection.execute(PG_CHARGE_BATCH, params)).all()
    paused = [(r.user_id, BillingInterval(r.billed)) for r in rows if r.outcome == "paused"]
    return BatchOutcome(processed=len(rows), charged=len(rows) - len(paused), paused=paused)
