"""The Cloud Sync billing run at scale on PostgreSQL: subscriptions charged per second."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import ManualClock
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql import migrate
from mana_credits_adapters.sql.lots import lot_values
from mana_credits_adapters.sql.store import SqlStore, create_engine
from mana_credits_adapters.sql.tables import balances, credit_lots, sync_subscriptions
from mana_credits_core.lots import opening_lot

START = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)


async def seed(store: SqlStore, subscriptions: int) -> None:
    """Users with credits and a monthly subscription due now (bulk inserts, no charges),
    then the tables analyzed, as autovacuum would have done after such inserts."""
    now = START
    users = [f"bench-{i:07d}" for i in range(subscriptions)]
    async with store.engine.begin() as connection:
        for start in range(0, subscriptions, 10_000):
            chunk = users[start : start + 10_000]
            await connection.execute(
                sa.insert(balances),
                [
                    {
                        "user_id": u,
                        "balance": 1000,
                        "total_earned": 1000,
                        "total_spent": 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for u in chunk
                ],
            )
            await connection.execute(
                sa.insert(credit_lots), [lot_values(opening_lot(u, 1000, 0, now)) for u in chunk]
            )
            await connection.execute(
                sa.insert(sync_subscriptions),
                [
                    {
                        "user_id": u,
                        "active": True,
                        "interval": "monthly",
                        "anchor_at": now - timedelta(days=31),
                        "months_paid": 1,
                        "next_charge_at": now,
                        "is_gifted": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for u in chunk
                ],
            )
    async with store.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for table in (balances, credit_lots, sync_subscriptions):
            await autocommit.exec_driver_sql(f"ANALYZE {table.fullname}")


async def billing_run(url: str, subscriptions: int) -> tuple[int, float]:
    engine = create_engine(url, pool_size=4)
    try:
        await migrate.upgrade(engine)
        store = SqlStore(engine)
        await seed(store, subscriptions)
        services = build_services(
            store, Settings(DATABASE_URL=url), clock=ManualClock(START + timedelta(minutes=1))
        )
        started = time.perf_counter()
        report = await services.sync.charge_due(batch_size=1000)
        elapsed = time.perf_counter() - started
        assert report.charged == subscriptions, report
        return report.charged, elapsed
    finally:
        await engine.dispose()
