"""Deterministic two-connection interleavings of the critical sections, on PostgreSQL.

Connection A makes a change by hand and holds it uncommitted; the service's operation B
starts and must wait on A's lock (the test sees it waiting in `pg_locks` before going
on); then A commits or rolls back, and B must decide on what A left behind: never on a
stale balance (lost update), never a second entry for a key, never a 500.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_adapters.sql.tables import credit_lots, lot_allocations, transactions
from mana_credits_core import InsufficientCredits, TransactionType
from mana_credits_core.services import ReconcileService, Services

pytestmark = pytest.mark.postgres

T = TypeVar("T")


@pytest.fixture(params=["group-commit", "one-transaction-per-debit"])
async def services(
    clean_pg_store: SqlStore, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Services]:
    batching = request.param == "group-commit"
    settings = Settings(MANA_CREDITS_HOME=tmp_path, MANA_CREDITS_DEBIT_BATCHING=batching)
    built = build_services(clean_pg_store, settings)
    await built.credits.credit("u", 100, TransactionType.GRANT, "funds")
    yield built
    await built.close()
    assert (await ReconcileService(clean_pg_store).run()).ok


async def debit_by_hand(a: AsyncConnection, amount: int, key: str | None = None) -> None:
    """What a debit writes, done in A's open transaction: the balance row first (its
    lock is what B waits on), then the entry and the credits burned from the user's
    one lot."""
    await a.execute(
        sa.text(
            "UPDATE credits.balances SET balance = balance - :n,"
            " total_spent = total_spent + :n WHERE user_id = 'u'"
        ),
        {"n": amount},
    )
    now = datetime.now(UTC)
    entry_id = str(uuid.uuid4())
    await a.execute(
        sa.insert(transactions).values(
            id=entry_id, user_id="u", type="usage", status="completed",
            amount=-amount, balance_before=100, balance_after=100 - amount, app_id="chat",
            description="by hand", metadata=None, idempotency_key=key, created_at=now,
            completed_at=now,
        )
    )  # fmt: skip
    lot_id = await a.scalar(
        sa.update(credit_lots)
        .where(credit_lots.c.user_id == "u")
        .values(remaining=credit_lots.c.remaining - amount)
        .returning(credit_lots.c.id)
    )
    await a.execute(
        sa.insert(lot_allocations).values(entry_id=entry_id, lot_id=lot_id, amount=amount)
    )


async def waiting_on_a_lock(store: SqlStore) -> None:
    """Return once some backend waits on a lock (B has reached A's row)."""
    for _ in range(500):
        async with store.engine.connect() as probe:
            waiting = await probe.scalar(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the operation never waited on the held lock")


async def behind_a_held_debit(
    store: SqlStore, outcome: str, held: int, operation: Awaitable[T], key: str | None = None
) -> asyncio.Future[T]:
    """Run `operation` (B) while connection A holds a debit of `held` uncommitted; once B
    waits on A's lock, A commits or rolls back (`outcome`). B's future, still running."""
    async with store.engine.connect() as a:
        await a.begin()
        await debit_by_hand(a, held, key)
        b = asyncio.ensure_future(operation)
        await waiting_on_a_lock(store)
        assert not b.done()
        await (a.commit() if outcome == "commit" else a.rollback())
    return b


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
async def test_a_debit_decides_on_the_committed_balance(
    services: Services, clean_pg_store: SqlStore, outcome: str
) -> None:
    b = await behind_a_held_debit(
        clean_pg_store, outcome, 50, services.credits.use("u", 60, "chat", "b")
    )
    if outcome == "commit":  # 50 left: B must not spend the 100 it would have read first
        with pytest.raises(InsufficientCredits) as refused:
            await b
        assert refused.value.available == 50
        assert (await services.credits.balance("u")).balance == 50
    else:
        assert (await b).balance is not None
        assert (await services.credits.balance("u")).balance == 40


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
async def test_a_key_written_by_another_transaction_is_waited_for(
    services: Services, clean_pg_store: SqlStore, outcome: str
) -> None:
    use = services.credits.use("u", 10, "chat", "by hand", idempotency_key="k")
    b = await behind_a_held_debit(clean_pg_store, outcome, 10, use, key="k")
    result = await b
    assert result.replayed is (outcome == "commit")  # A's entry, or B's own once A is gone
    entries = await services.credits.transactions("u", limit=10)
    assert sum(1 for e in entries if e.idempotency_key == "k") == 1
    assert (await services.credits.balance("u")).balance == 90
