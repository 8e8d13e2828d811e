"""Concurrent debits by operation: the accrual is exact however the debits interleave.

On every store, a few hundred at once; on PostgreSQL, a thousand through group commit
(many debits of one user in one transaction, each accruing on the one before).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.group_commit import BatchSettings, GroupCommitDebits
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core import InsufficientCredits, TransactionType
from mana_credits_core.services import LedgerResult, Services

from .test_pricing import entries_of, usage_entries


async def chats(services: Services, user: str, count: int) -> list[LedgerResult | BaseException]:
    return await asyncio.gather(
        *(
            services.credits.use_operation(user, "ai_chat_ollama", idempotency_key=f"c{i}")
            for i in range(count)
        ),
        return_exceptions=True,
    )


async def test_concurrent_tenths_charge_exactly(services: Services) -> None:
    await services.credits.credit("hot", 50, TransactionType.GRANT, "funds")
    results = await chats(services, "hot", 200)
    assert all(isinstance(r, LedgerResult) and not r.replayed for r in results), results
    balance = await services.credits.balance("hot")
    assert (balance.balance, balance.total_spent, balance.accrued_milli) == (30, 20, 0)
    used = usage_entries(await entries_of(services, "hot"))
    assert len(used) == 200
    assert sorted(e.metadata["pricing"]["accruedMilli"] for e in used if e.metadata) == sorted(
        list(range(100, 1000, 100)) * 20 + [0] * 20
    )
    assert sum(e.amount for e in used) == -20
    (usage,) = await services.credits.usage_by_operation()
    assert (usage.calls, usage.cost_milli) == (200, 20_000)
    assert (await services.reconcile.run()).ok


async def test_concurrent_tenths_stop_at_the_credit_the_balance_cannot_pay(
    services: Services,
) -> None:
    """10 credits pay 100 tenths; 9 more succeed charging nothing (0.9 accrued); every
    other is refused and accrues nothing."""
    await services.credits.credit("hot", 10, TransactionType.GRANT, "funds")
    results = await chats(services, "hot", 200)
    applied = [r for r in results if isinstance(r, LedgerResult)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert (len(applied), len(refused)) == (109, 91), results
    assert {(r.required, r.available) for r in refused} == {(1, 0)}
    balance = await services.credits.balance("hot")
    assert (balance.balance, balance.total_spent, balance.accrued_milli) == (0, 10, 900)
    assert (await services.reconcile.run()).ok


# PostgreSQL: a thousand at once through group commit.


@pytest.fixture
async def group_commit(clean_pg_store: SqlStore) -> AsyncIterator[GroupCommitDebits]:
    debits = GroupCommitDebits(clean_pg_store, BatchSettings(writers=2, linger=0.02))
    yield debits
    await debits.close()


@pytest.fixture
def pg_services(
    clean_pg_store: SqlStore, group_commit: GroupCommitDebits, settings: Settings
) -> Services:
    return build_services(clean_pg_store, settings, clock=TickingClock(), debits=group_commit)


@pytest.mark.postgres
async def test_a_thousand_concurrent_tenths_of_one_user_charge_a_hundred_credits(
    pg_services: Services, group_commit: GroupCommitDebits
) -> None:
    services = pg_services
    await services.credits.credit("hot", 150, TransactionType.GRANT, "funds")
    results = await chats(services, "hot", 1000)
    assert all(isinstance(r, LedgerResult) and not r.replayed for r in results), [
        r for r in results if not isinstance(r, LedgerResult)
    ][:3]
    assert group_commit.debits == 1000
    assert group_commit.transactions < 1000  # batched: one user's debits share transactions
    balance = await services.credits.balance("hot")
    assert (balance.balance, balance.total_spent, balance.accrued_milli) == (50, 100, 0)
    used = usage_entries(await entries_of(services, "hot"))
    assert len(used) == 1000
    assert sum(e.amount for e in used) == -100
    assert sum(e.amount == -1 for e in used) == 100
    (usage,) = await services.credits.usage_by_operation()
    assert (usage.calls, usage.quantity, usage.cost_milli) == (1000, 1000, 100_000)
    assert (await services.reconcile.run()).ok


@pytest.mark.postgres
async def test_concurrent_priced_debits_of_ten_users_each_accrue_exactly(
    pg_services: Services, group_commit: GroupCommitDebits
) -> None:
    services = pg_services
    users = [f"u{n}" for n in range(10)]
    for user in users:
        await services.credits.credit(user, 20, TransactionType.GRANT, "funds")
    # Each user: 95 chats (9.5) and 13 imports of 7 items (13 x 0.14 = 1.82).
    work = [
        services.credits.use_operation(user, operation, quantity)
        for n in range(108)
        for user in users
        for operation, quantity in [("ai_chat_ollama", None) if n < 95 else ("bulk_import", 7)]
    ]
    results = await asyncio.gather(*work, return_exceptions=True)
    assert all(isinstance(r, LedgerResult) for r in results), [
        r for r in results if not isinstance(r, LedgerResult)
    ][:3]
    assert group_commit.debits == 1080
    for user in users:
        balance = await services.credits.balance(user)
        assert (balance.balance, balance.total_spent, balance.accrued_milli) == (9, 11, 320)
        assert len(usage_entries(await entries_of(services, user))) == 108
    usage = {u.operation: u for u in await services.credits.usage_by_operation()}
    assert (usage["ai_chat_ollama"].calls, usage["ai_chat_ollama"].cost_milli) == (950, 95_000)
    assert (usage["bulk_import"].quantity, usage["bulk_import"].cost_milli) == (910, 18_200)
    assert (await services.reconcile.run()).ok
