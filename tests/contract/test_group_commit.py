"""Group commit on PostgreSQL: batches save commits, never a guarantee.

The contract and race suites already run through group commit on PostgreSQL (it is the
default there); these tests pin what is particular to batching: one transaction for
many callers, each with its own answer, arrival order per user, duplicate keys inside
one batch, a batch the database refuses, a database that is away, shutdown.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from mana_credits_adapters.bootstrap import build_services, open_debits
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.memory import MemoryStore
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.group_commit import BatchSettings, GroupCommitDebits
from mana_credits_adapters.sql.store import SqlStore, create_engine
from mana_credits_core import (
    IdempotencyKeyReused,
    InsufficientCredits,
    StoreUnavailable,
    TransactionType,
)
from mana_credits_core.errors import BalanceNotFound
from mana_credits_core.ledger import Applied, Debit, NoBalance, Refused, Replayed
from mana_credits_core.services import LedgerResult, Services
from mana_credits_core.services.credits import UnitOfWorkDebits

pytestmark = pytest.mark.postgres


@pytest.fixture
async def applier(clean_pg_store: SqlStore) -> AsyncIterator[GroupCommitDebits]:
    debits = GroupCommitDebits(clean_pg_store, BatchSettings(writers=1, linger=0.05))
    yield debits
    await debits.close()


@pytest.fixture
def services(clean_pg_store: SqlStore, applier: GroupCommitDebits, settings: Settings) -> Services:
    return build_services(clean_pg_store, settings, clock=TickingClock(), debits=applier)


def debit(user: str, amount: int, key: str | None = None, app: str = "chat") -> Debit:
    return Debit(
        entry_id=f"e-{user}-{key}-{amount}-{datetime.now(UTC).timestamp()}",
        user_id=user,
        amount=amount,
        app_id=app,
        description="test",
        metadata={"n": amount},
        idempotency_key=key,
        now=datetime.now(UTC),
    )


async def test_concurrent_debits_share_transactions_and_each_gets_its_answer(
    services: Services, applier: GroupCommitDebits
) -> None:
    await services.credits.credit("hot", 150, TransactionType.GRANT, "funds")
    results = await asyncio.gather(
        *(
            services.credits.use("hot", 1, "chat", "go", idempotency_key=f"k{i}")
            for i in range(200)
        ),
        return_exceptions=True,
    )
    applied = [r for r in results if isinstance(r, LedgerResult)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert (len(applied), len(refused)) == (150, 50)
    assert applier.debits == 200  # every debit was decided by the writer...
    assert applier.transactions < 20  # ...in far fewer transactions than debits
    assert sorted(r.entry.balance_before for r in applied) == list(range(1, 151))
    assert all(r.balance is not None and r.balance.balance >= 0 for r in applied)
    assert (await services.credits.balance("hot")).balance == 0
    usage = await services.credits.usage_report(days=1)
    assert [(u.credits_used, u.operations) for u in usage] == [(150, 150)]
    assert (await services.reconcile.run()).ok


async def test_a_users_debits_are_decided_in_arrival_order(
    applier: GroupCommitDebits, services: Services
) -> None:
    await services.credits.credit("ann", 1000, TransactionType.GRANT, "funds")
    amounts = [5, 1, 30, 7, 2, 90, 4]
    outcomes = await asyncio.gather(
        *(applier.apply(debit("ann", a, f"o{i}")) for i, a in enumerate(amounts))
    )
    befores = [o.entry.balance_before for o in outcomes if isinstance(o, Applied)]
    expected = [1000 - sum(amounts[:i]) for i in range(len(amounts))]
    assert befores == expected
    assert applier.transactions == 1


async def test_with_several_writers_each_users_debits_keep_arrival_order(
    clean_pg_store: SqlStore, services: Services
) -> None:
    writers = GroupCommitDebits(clean_pg_store, BatchSettings(writers=3, linger=0.05))
    users = [f"u{n}" for n in range(12)]  # spread over the three writers
    try:
        for user in users:
            await services.credits.credit(user, 100, TransactionType.GRANT, "funds")
        amounts = [30, 50, 40, 10]  # the third does not fit once the first two are in
        outcomes = await asyncio.gather(
            *(
                writers.apply(debit(user, a, f"{user}-{i}"))
                for i, a in enumerate(amounts)
                for user in users
            )
        )
        for n in range(len(users)):
            mine = outcomes[n :: len(users)]
            assert [type(o) for o in mine] == [Applied, Applied, Refused, Applied]
            befores = [o.entry.balance_before for o in mine if isinstance(o, Applied)]
            assert befores == [100, 70, 20]
        assert {b.balance for b in [await services.credits.balance(u) for u in users]} == {10}
        assert len({zlib.crc32(u.encode()) % 3 for u in users}) == 3  # every writer had work
    finally:
        await writers.close()


async def test_a_key_repeated_inside_one_batch_is_applied_once(
    services: Services, applier: GroupCommitDebits
) -> None:
    await services.credits.credit("bo", 100, TransactionType.GRANT, "funds")
    results = await asyncio.gather(
        *(services.credits.use("bo", 7, "chat", "same", idempotency_key="dup") for _ in range(20)),
        services.credits.use("bo", 8, "chat", "other amount", idempotency_key="dup"),
        return_exceptions=True,
    )
    *same, other = results
    assert all(isinstance(r, LedgerResult) for r in same)
    entries = {r.entry.id for r in same if isinstance(r, LedgerResult)}
    assert len(entries) == 1
    assert sum(isinstance(r, LedgerResult) and not r.replayed for r in same) == 1
    assert isinstance(other, IdempotencyKeyReused)
    assert (await services.credits.balance("bo")).balance == 93
    assert applier.transactions == 1


async def test_a_key_repeated_inside_one_batch_with_other_text_is_refused(
    services: Services, applier: GroupCommitDebits
) -> None:
    await services.credits.credit("bo", 100, TransactionType.GRANT, "funds")
    seen = {"model": "gpt", "n": 1}

    def same(metadata: dict[str, object]) -> Awaitable[LedgerResult]:
        return services.credits.use("bo", 7, "chat", "same", idempotency_key="d", metadata=metadata)

    results = await asyncio.gather(
        same(seen),
        same({"n": 1.0, "model": "gpt"}),  # the same JSON value
        services.credits.use("bo", 7, "chat", "other text", idempotency_key="d", metadata=seen),
        same({"model": "gpt", "n": 2}),
        return_exceptions=True,
    )
    first, equal, other_text, other_metadata = results
    assert isinstance(first, LedgerResult)
    assert not first.replayed
    assert isinstance(equal, LedgerResult)
    assert equal.replayed
    assert isinstance(other_text, IdempotencyKeyReused)
    assert other_text.details["differs"] == ["description"]
    assert isinstance(other_metadata, IdempotencyKeyReused)
    assert other_metadata.details["differs"] == ["metadata"]
    assert applier.transactions == 1  # all four were decided in one batch
    # A replay read back from the database (not from the batch) is judged alike.
    with pytest.raises(IdempotencyKeyReused):
        await services.credits.use("bo", 7, "chat", "later", idempotency_key="d", metadata=seen)
    again = await same({"n": 1, "model": "gpt"})
    assert again.replayed
    assert (await services.credits.balance("bo")).balance == 93


async def test_every_outcome_in_one_batch(services: Services, applier: GroupCommitDebits) -> None:
    await services.credits.credit("cy", 10, TransactionType.GRANT, "funds")
    first = await applier.apply(debit("cy", 3, "seen"))
    assert isinstance(first, Applied)
    outcomes = await asyncio.gather(
        applier.apply(debit("nobody", 1)),
        applier.apply(debit("cy", 50)),
        applier.apply(debit("cy", 3, "seen")),
        applier.apply(debit("cy", 7)),
    )
    nobody, too_much, replay, fits = outcomes
    assert isinstance(nobody, NoBalance)
    assert too_much == Refused(7)
    assert isinstance(replay, Replayed)
    assert replay.entry.id == first.entry.id
    assert replay.entry.metadata == {"n": 3}
    assert isinstance(fits, Applied)
    assert fits.balance.balance == 0
    with pytest.raises(BalanceNotFound):
        await services.credits.use("nobody", 1, "chat", "x")


async def test_a_batch_the_database_refuses_is_retried_one_debit_at_a_time(
    clean_pg_store: SqlStore, services: Services, applier: GroupCommitDebits
) -> None:
    """A key claimed by another process between look-up and write: the unique
    constraint refuses the whole batch; each debit then gets its own answer."""
    for user in ("dee", "eve"):
        await services.credits.credit(user, 100, TransactionType.GRANT, "funds")
    now = datetime.now(UTC)
    async with clean_pg_store.engine.connect() as other:
        await other.execute(
            sa.text(
                "INSERT INTO credits.transactions (id, user_id, type, status, amount,"
                " balance_before, balance_after, app_id, description, idempotency_key,"
                " created_at, completed_at) VALUES ('elsewhere', 'dee', 'usage', 'completed',"
                " -4, 100, 96, 'chat', 'test', 'contested', :now, :now)"
            ),
            {"now": now},
        )
        batch = asyncio.gather(
            applier.apply(debit("eve", 1, "e1")),
            applier.apply(debit("dee", 4, "contested")),
            applier.apply(debit("dee", 2, "d2")),
        )
        await asyncio.sleep(0.3)  # the batch now waits on the uncommitted key
        assert not batch.done()
        await other.commit()
    eve, contested, dee = await batch
    assert isinstance(eve, Applied)
    assert eve.balance.balance == 99
    assert isinstance(contested, Replayed)
    assert contested.entry.id == "elsewhere"
    assert isinstance(dee, Applied)
    assert dee.balance.balance == 98


async def test_two_processes_racing_on_one_key_apply_it_once(
    clean_pg_store: SqlStore, services: Services, applier: GroupCommitDebits
) -> None:
    await services.credits.credit("fay", 100, TransactionType.GRANT, "funds")
    elsewhere = GroupCommitDebits(clean_pg_store, BatchSettings(writers=1, linger=0.05))
    try:
        outcomes = await asyncio.gather(
            *(a.apply(debit("fay", 6, "race")) for _ in range(10) for a in (applier, elsewhere))
        )
    finally:
        await elsewhere.close()
    assert sum(isinstance(o, Applied) for o in outcomes) == 1
    assert sum(isinstance(o, Replayed) for o in outcomes) == 19
    assert (await services.credits.balance("fay")).balance == 94


async def test_a_cancelled_caller_does_not_cancel_its_debit(
    services: Services, applier: GroupCommitDebits
) -> None:
    await services.credits.credit("gus", 10, TransactionType.GRANT, "funds")
    waiting = asyncio.ensure_future(applier.apply(debit("gus", 4, "gone")))
    await asyncio.sleep(0)  # queued
    waiting.cancel()
    await applier.close()  # the writer finishes its queue
    assert (await services.credits.balance("gus")).balance == 6
    replay = await applier.apply(debit("gus", 4, "gone"))
    assert isinstance(replay, Replayed)


async def test_close_returns_the_writers_connection(
    clean_pg_store: SqlStore, services: Services, applier: GroupCommitDebits
) -> None:
    await services.credits.credit("hal", 10, TransactionType.GRANT, "funds")
    await services.credits.use("hal", 1, "chat", "x")
    assert clean_pg_store.connections_in_use() == 1  # lingering for the next debit
    await applier.close()
    assert clean_pg_store.connections_in_use() == 0


async def test_an_unreachable_database_answers_every_caller_unavailable() -> None:
    engine = create_engine(
        "postgresql+psycopg://nobody@127.0.0.1:9/none", pool_size=1, pool_timeout=1
    )
    store = SqlStore(engine)
    applier = GroupCommitDebits(store)
    try:
        results = await asyncio.gather(
            *(applier.apply(debit(f"u{i}", 1)) for i in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, StoreUnavailable) for r in results)
    finally:
        await store.close()


async def test_a_wait_gathers_debits_that_arrive_apart(
    clean_pg_store: SqlStore, services: Services
) -> None:
    await services.credits.credit("ivy", 10, TransactionType.GRANT, "funds")
    patient = GroupCommitDebits(clean_pg_store, BatchSettings(max_wait=0.2, linger=0.05))
    try:

        async def later() -> object:
            await asyncio.sleep(0.02)
            return await patient.apply(debit("ivy", 2, "late"))

        first, second = await asyncio.gather(patient.apply(debit("ivy", 1, "early")), later())
    finally:
        await patient.close()
    assert isinstance(first, Applied)
    assert isinstance(second, Applied)
    assert patient.transactions == 1


def test_batching_is_a_setting(clean_pg_store: SqlStore) -> None:
    on = open_debits(clean_pg_store, Settings())
    off = open_debits(clean_pg_store, Settings(MANA_CREDITS_DEBIT_BATCHING=False))
    assert isinstance(on, GroupCommitDebits)
    assert isinstance(off, UnitOfWorkDebits)
    assert isinstance(open_debits(MemoryStore(), Settings()), UnitOfWorkDebits)
