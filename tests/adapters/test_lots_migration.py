"""Upgrading a database that holds balances to credit lots (migration 0006): every
balance holding credits gets its opening lot, pending reservations hold from it, and
the lot invariants hold at once, and after the service has worked on it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql import migrate
from mana_credits_adapters.sql.store import SqlStore, create_engine
from mana_credits_adapters.sql.tables import balances, reservations, transactions
from mana_credits_core.lots import DEFAULT_PRIORITY, LotSource, opening_lot_id

BEFORE = datetime(2025, 6, 1, tzinfo=UTC)


def _admin(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(params=[pytest.param("sqlite", marks=pytest.mark.sqlite),
                        pytest.param("postgres", marks=pytest.mark.postgres)])  # fmt: skip
async def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    """A database of its own at revision 0005, the last one before lots."""
    dropped: str | None = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    else:
        base: str = request.getfixturevalue("pg_url")
        dropped = f"lots_upgrade_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(_admin(base), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dropped)))
        url = make_url(base).set(database=dropped).render_as_string(hide_password=False)
    engine = create_engine(url)
    await migrate.upgrade(engine, "0005")
    store = SqlStore(engine)
    try:
        yield store
    finally:
        await store.close()
        if dropped is not None:
            with psycopg.connect(_admin(base), autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(dropped)))


async def _user(c: AsyncConnection, user: str, earned: int, spent: int, held: int = 0) -> None:
    """A user as the service wrote them before lots: a balance and a ledger that agree,
    and a pending reservation of `held`."""
    at = BEFORE
    await c.execute(
        sa.insert(balances).values(
            user_id=user, balance=earned - spent - held, total_earned=earned,
            total_spent=spent, debt=0, created_at=at, updated_at=at,
        )
    )  # fmt: skip
    rows = [(earned, "grant"), (-spent, "usage")] if spent else [(earned, "grant")]
    after = 0
    for n, (amount, kind) in enumerate(rows):
        at += timedelta(minutes=1)
        await c.execute(
            sa.insert(transactions).values(
                id=f"{user}-{n}", user_id=user, type=kind, status="completed", amount=amount,
                balance_before=after, balance_after=after + amount, app_id="chat",
                description="before lots", created_at=at, completed_at=at,
            )
        )  # fmt: skip
        after += amount
    if held:
        await c.execute(
            sa.insert(reservations).values(
                id=f"{user}-hold", user_id=user, amount=held, reason="render", app_id="chat",
                status="pending", created_at=at,
            )
        )  # fmt: skip


async def test_an_upgraded_database_opens_one_lot_per_balance_and_reconciles(
    old_store: SqlStore, tmp_path: Path
) -> None:
    async with old_store.engine.begin() as c:
        await _user(c, "ann", 100, 30)  # 70 left
        await _user(c, "bob", 40, 40)  # nothing left: no lot
        await _user(c, "cy", 30, 0, held=10)  # 20 spendable, 10 held
        await _user(c, "dee", 5, 0, held=5)  # all held
    await migrate.upgrade(old_store.engine)
    clock = TickingClock()
    s = build_services(
        old_store,
        Settings(MANA_CREDITS_HOME=tmp_path, MANA_CREDITS_RESERVATION_TTL=10**9),
        clock=clock,
    )
    try:
        report = await s.reconcile.run()
        assert report.ok, report.drifts
        assert report.users_checked == 4
        opened = {}
        for user in ("ann", "bob", "cy", "dee"):
            lots = await s.lots.of_user(user)
            opened[user] = [(x.amount, x.remaining, x.held) for x in lots]
            for lot in lots:
                assert lot.id == opening_lot_id(user)
                assert (lot.source, lot.priority, lot.expires_at) == (
                    LotSource.OPENING, DEFAULT_PRIORITY, None,
                )  # fmt: skip
                assert (lot.entry_id, lot.created_at) == (None, BEFORE)
        assert opened == {
            "ann": [(70, 70, 0)],
            "bob": [],
            "cy": [(30, 30, 10)],
            "dee": [(5, 5, 5)],
        }
        async with old_store.reader() as reader:
            holds = await reader.lots.holds("cy-hold")
        assert [(a.lot_id, a.amount) for a in holds] == [(opening_lot_id("cy"), 10)]
        # The service works on the upgraded data: the opening lots pay.
        used = await s.credits.use("ann", 25, "chat", "after the upgrade")
        assert [(a.lot_id, a.amount) for a in await s.lots.allocations(used.entry.id)] == [
            (opening_lot_id("ann"), 25)
        ]
        committed = await s.reservations.commit("cy-hold")
        assert [a.amount for a in await s.lots.allocations(committed.id)] == [10]
        assert await s.reservations.refund("dee-hold") == 5
        await s.credits.grant(
            "bob", 15, "welcome back", "ops", expires_at=clock.now() + timedelta(days=1)
        )
        report = await s.reconcile.run()
        assert report.ok, report.drifts
    finally:
        await s.close()
