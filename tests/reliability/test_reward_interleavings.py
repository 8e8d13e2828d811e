"""A reward racing another transaction that holds the same reward uncommitted, on
PostgreSQL: the unique ledger key decides, not a look-up made before.

Connection A writes the reward by hand (balance and entry, key included) and holds it;
the service's reward B starts, finds no entry yet (A's is uncommitted), and must wait on
A's locks; then A commits or rolls back. After a commit, B must answer A's entry as
already granted and write nothing; after a rollback, B grants it itself.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_adapters.sql.tables import credit_lots, transactions
from mana_credits_core import TransactionType
from mana_credits_core.lots import DEFAULT_PRIORITY
from mana_credits_core.rewards import reward_key

from .test_interleavings import waiting_on_a_lock

pytestmark = pytest.mark.postgres


async def reward_by_hand(a: AsyncConnection, entry_id: str) -> None:
    """What a reward of 50 for `fb` writes, done in A's open transaction: the balance,
    the entry and its lot."""
    await a.execute(
        sa.text(
            "UPDATE credits.balances SET balance = balance + 50,"
            " total_earned = total_earned + 50 WHERE user_id = 'u'"
        )
    )
    now = datetime.now(UTC)
    await a.execute(
        sa.insert(transactions).values(
            id=entry_id, user_id="u", type="grant", status="completed", amount=50,
            balance_before=10, balance_after=60, app_id="community", description="feedback",
            metadata={"reason": "feedback", "referenceId": "fb"},
            idempotency_key=reward_key("fb"), created_at=now, completed_at=now,
        )
    )  # fmt: skip
    await a.execute(
        sa.insert(credit_lots).values(
            id=entry_id, user_id="u", source="grant", amount=50, remaining=50, held=0,
            priority=DEFAULT_PRIORITY, created_at=now, entry_id=entry_id,
        )
    )  # fmt: skip


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
async def test_the_key_held_by_another_transaction_decides(
    clean_pg_store: SqlStore, tmp_path: Path, outcome: str
) -> None:
    services = build_services(clean_pg_store, Settings(MANA_CREDITS_HOME=tmp_path))
    try:
        await services.credits.credit("u", 10, TransactionType.REFUND, "funds")
        held_id = str(uuid.uuid4())
        async with clean_pg_store.engine.connect() as a:
            await a.begin()
            await reward_by_hand(a, held_id)
            b = asyncio.ensure_future(services.credits.reward("u", 50, "feedback", "fb"))
            await waiting_on_a_lock(clean_pg_store)
            assert not b.done()
            await (a.commit() if outcome == "commit" else a.rollback())
        done = await b
        assert done.already_granted is (outcome == "commit")
        assert (done.entry.id == held_id) is (outcome == "commit")
        assert done.balance_after == 60
        entries = await services.credits.transactions("u")
        assert sum(e.idempotency_key == reward_key("fb") for e in entries) == 1
        assert (await services.credits.balance("u")).balance == 60
        assert (await services.reconcile.run()).ok
    finally:
        await services.close()
