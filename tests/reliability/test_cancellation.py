"""Library calls cancelled at any point (a timeout around them) roll back at once.

Each store gets a loop of calls under `asyncio.wait_for` with timeouts from 0 to a few
milliseconds, so that cancellations land before, inside and after every statement of
debits, holds, commits and credits. Right after it nothing may still hold the database:
a write from the same process, and on SQL stores a write lock taken with no wait and the
CLI writing from another process, succeed; reconcile finds no drift.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.memory import MemoryStore
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core import CreditsError, TransactionType
from mana_credits_core.ports import Store
from mana_credits_core.services import Services

from ..processes import run

ROUNDS = 2
STEPS = 60  # timeouts 0, 0.25, … 14.75 ms


async def reserve_and_commit(services: Services, i: int) -> None:
    held = await services.reservations.reserve("alice", 2, f"job {i}")
    await services.reservations.commit(held.reservation.id, "done")


async def reserve_and_refund(services: Services, i: int) -> None:
    held = await services.reservations.reserve("alice", 2, f"job {i}")
    await services.reservations.refund(held.reservation.id)


async def debit(services: Services, i: int) -> None:
    await services.credits.use("alice", 1, "chat", "answer", idempotency_key=f"k{i}")


async def credit(services: Services, i: int) -> None:
    await services.credits.refund("bob", 1, "failed job", idempotency_key=f"r{i}")


CALLS: list[Callable[[Services, int], Awaitable[None]]] = [
    debit,
    reserve_and_commit,
    credit,
    reserve_and_refund,
]


async def cancel_at_every_point(services: Services, store: Store) -> int:
    """Run the calls under ever longer timeouts; how many were cancelled. After each
    cancelled call, nothing may hold the store (checked without waiting)."""
    cancelled = 0
    for i in range(ROUNDS * STEPS):
        call = CALLS[i % len(CALLS)]
        try:
            await asyncio.wait_for(call(services, i), timeout=(i % STEPS) / 4_000)
        except TimeoutError:
            cancelled += 1
            free = await nothing_holds(store)
            assert free, f"call {i} ({call.__name__}) cancelled left the store locked"
        except CreditsError as refused:  # e.g. a replayed key: fine, but nothing else
            pytest.fail(f"call {i} ({call.__name__}) raised {refused!r}")
    return cancelled


async def nothing_holds(store: Store) -> bool:
    """No unit of work left open by a cancelled call, as far as a check that does not
    wait can tell: SQLite's write lock, the memory store's lock. (PostgreSQL's debit
    writers may be mid-batch at any instant: it is checked once all is quiet.)"""
    if isinstance(store, MemoryStore):
        return not store.lock.locked()
    if isinstance(store, SqlStore) and store.dialect == "sqlite":
        # A writer that finds the write lock taken fails at once with timeout=0.
        other = sqlite3.connect(sqlite_path(store), timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        except sqlite3.OperationalError:
            return False
        finally:
            other.close()
    return True


def sqlite_path(store: SqlStore) -> Path:
    database = store.engine.url.database
    assert database is not None
    return Path(database)


def cli_url(store: SqlStore, pg_url: str | None) -> str:
    return f"sqlite:///{sqlite_path(store)}" if store.dialect == "sqlite" else str(pg_url)


async def no_transaction_left(store: SqlStore) -> None:
    """Once all is quiet, no session idles inside a transaction (PostgreSQL), and
    nothing holds SQLite's write lock."""
    if store.dialect == "sqlite":
        assert await nothing_holds(store)
        return
    async with store.engine.connect() as probe:
        stuck = await probe.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
            )
        )
    assert stuck == 0


@pytest.fixture
async def funded(services: Services) -> Services:
    await services.credits.credit("alice", 10_000, TransactionType.GRANT, "funds")
    await services.credits.credit("bob", 10, TransactionType.GRANT, "funds")
    return services


async def test_cancelled_calls_leave_nothing_behind(funded: Services, store: Store) -> None:
    cancelled = await cancel_at_every_point(funded, store)
    # Timeouts of 0 cancel before the call starts; on the SQL stores longer ones land
    # inside calls too (the memory store is done before any timer fires).
    assert cancelled > (ROUNDS if isinstance(store, SqlStore) else ROUNDS - 1)
    # A write from this process goes through (bounded only so a regression cannot hang).
    after = await asyncio.wait_for(funded.credits.use("alice", 1, "chat", "after"), 60)
    assert after.balance is not None
    if isinstance(store, SqlStore):
        await no_transaction_left(store)
    assert (await funded.reconcile.run()).ok


@pytest.fixture
async def sql_funded(sql_store: SqlStore, settings: Settings) -> AsyncIterator[Services]:
    services = build_services(sql_store, settings, clock=TickingClock())
    await services.credits.credit("alice", 10_000, TransactionType.GRANT, "funds")
    await services.credits.credit("bob", 10, TransactionType.GRANT, "funds")
    yield services
    await services.close()


async def test_another_process_writes_right_after_cancelled_calls(
    sql_funded: Services, sql_store: SqlStore, request: pytest.FixtureRequest
) -> None:
    funded = sql_funded
    pg_url = request.getfixturevalue("pg_url") if sql_store.dialect == "postgresql" else None
    await cancel_at_every_point(funded, sql_store)
    before = (await funded.credits.balance("bob")).balance
    command = [sys.executable, "-m", "mana_credits_cli", "credits", "grant", "bob", "5",
               "--reason", "after cancellations", "--operator", "ops",
               "--database-url", cli_url(sql_store, pg_url)]  # fmt: skip
    # Bounded: a write lock left behind makes the CLI wait out SQLite's busy timeout
    # (30 s) and fail with "database is locked".
    done = await asyncio.to_thread(run, command, timeout=120, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "bob: grant +5" in done.stdout
    assert (await funded.credits.balance("bob")).balance == before + 5
    assert (await funded.reconcile.run()).ok
