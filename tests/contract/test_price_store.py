"""Pricing in every store: the seeded price list, its changes, priced debits that accrue
below a credit, partial commits of reservations and the erasure of priced usage decide
alike on memory, SQLite and PostgreSQL (group commit included)."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.group_commit import BatchSettings, GroupCommitDebits
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core import TransactionType
from mana_credits_core.errors import Conflict
from mana_credits_core.ports import Store
from mana_credits_core.pricing import Price, PriceAction, PriceChange, Priced, seeded
from mana_credits_core.services import LedgerResult, Services

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _untimed(price: Price) -> Price:
    return replace(price, created_at=EPOCH, updated_at=EPOCH)


async def test_a_new_store_holds_the_seeded_price_list(store: Store) -> None:
    async with store.reader() as reader:
        listed = await reader.prices.list(include_retired=True)
        one = await reader.prices.get("bulk_import")
    expected = sorted(seeded(EPOCH), key=lambda p: (p.app_id, p.operation))
    assert [_untimed(p) for p in listed] == expected
    assert one is not None
    assert (one.price_milli, one.unit, one.unit_size) == (200, "item", 10)
    assert {p.created_at for p in listed} == {listed[0].created_at}
    assert listed[0].created_at.tzinfo is not None


def _change(
    operation: str, action: PriceAction, old: int | None, new: int | None, at: datetime, n: int
) -> PriceChange:
    before: dict[str, object] = {} if old is None else {"name": "Old name", "unitSize": 1}
    return PriceChange(f"c{n}", operation, action, old, new, "ops@example.org", "why", at, before)


async def test_prices_and_their_changes_round_trip(store: Store) -> None:
    t1, t2, t3 = (datetime(2026, 3, day, 12, tzinfo=UTC) for day in (1, 2, 3))
    new = Price("pdf_merge", "documents", "PDF merge", "Two PDFs in one.", 500, None, 1, t1, t1)
    async with store.unit_of_work() as uow:
        assert await uow.prices.lock("pdf_merge") is None
        await uow.prices.put(new, _change("pdf_merge", PriceAction.CREATED, None, 500, t1, 1))
        await uow.commit()
    async with store.unit_of_work() as uow:
        locked = await uow.prices.lock("pdf_merge")
        assert locked == new
        dearer = replace(new, price_milli=750, unit="page", unit_size=5, updated_at=t2)
        await uow.prices.put(dearer, _change("pdf_merge", PriceAction.CHANGED, 500, 750, t2, 2))
        await uow.commit()
    async with store.unit_of_work() as uow:
        gpt = await uow.prices.lock("ai_chat_gpt4")
        assert gpt is not None
        retired = replace(gpt, retired_at=t3, updated_at=t3)
        await uow.prices.put(
            retired, _change("ai_chat_gpt4", PriceAction.RETIRED, 5000, None, t3, 3)
        )
        await uow.commit()
    # A new operation under an id that exists: another unit of work added it first.
    async with store.unit_of_work() as uow:
        with pytest.raises(Conflict):
            await uow.prices.put(new, _change("pdf_merge", PriceAction.CREATED, None, 500, t3, 4))
    async with store.reader() as reader:
        assert await reader.prices.get("pdf_merge") == dearer
        active = {p.operation for p in await reader.prices.list()}
        every = {p.operation for p in await reader.prices.list(include_retired=True)}
        assert "ai_chat_gpt4" not in active
        assert "pdf_merge" in active
        assert every == active | {"ai_chat_gpt4"}
        mine = await reader.prices.changes("pdf_merge")
        everything = await reader.prices.changes(limit=2)
    assert [(c.id, c.action, c.old_price_milli, c.new_price_milli) for c in mine] == [
        ("c2", PriceAction.CHANGED, 500, 750),
        ("c1", PriceAction.CREATED, None, 500),
    ]
    assert mine[0] == _change("pdf_merge", PriceAction.CHANGED, 500, 750, t2, 2)
    assert [c.id for c in everything] == ["c3", "c2"]


def _trace(result: LedgerResult) -> tuple[int, int, int, dict[str, object]]:
    assert result.balance is not None
    assert result.entry.metadata is not None
    return (
        result.entry.amount,
        result.balance.balance,
        result.balance.accrued_milli,
        result.entry.metadata["pricing"],
    )


def _pricing(accrued: int, quantity: int = 1) -> dict[str, object]:
    cost = 100 * quantity
    return {
        "operation": "ai_chat_ollama",
        "quantity": quantity,
        "priceMilli": 100,
        "unitSize": 1,
        "costMilli": cost,
        "accruedMilli": accrued,
    }


async def test_priced_debits_accrue_below_a_credit_alike(services: Services, store: Store) -> None:
    await services.credits.credit("ana", 5, TransactionType.GRANT, "funds")
    results = [
        await services.credits.use_operation("ana", "ai_chat_ollama", idempotency_key=f"k{i}")
        for i in range(10)
    ]
    # Ten calls at 0.1 credits: nothing charged nine times, exactly one credit the tenth.
    assert [_trace(r) for r in results] == [
        *((0, 5, 100 * i, _pricing(100 * i)) for i in range(1, 10)),
        (-1, 4, 0, _pricing(0)),
    ]
    replay = await services.credits.use_operation("ana", "ai_chat_ollama", idempotency_key="k9")
    assert replay.replayed
    assert replay.entry == results[-1].entry
    late = await services.credits.use_operation("ana", "ai_chat_ollama", 3)
    assert _trace(late) == (0, 4, 300, _pricing(300, 3))
    balance = await services.credits.balance("ana")
    assert (balance.balance, balance.total_spent, balance.accrued_milli) == (4, 1, 300)
    async with store.reader() as reader:
        stored = await reader.ledger.by_idempotency_key("ana", "k9")
    assert stored == results[-1].entry
    [usage] = await services.credits.usage_by_operation(days=1)
    assert (usage.operation, usage.calls, usage.quantity, usage.cost_milli) == (
        "ai_chat_ollama",
        11,
        13,
        1300,
    )
    records = await services.users.records("ana")
    assert [(u.user_id, u.calls, u.cost_milli) for u in records.operation_usage] == [
        ("ana", 11, 1300)
    ]


@pytest.mark.postgres
async def test_concurrent_priced_debits_of_one_user_share_a_batch(
    clean_pg_store: SqlStore, settings: Settings
) -> None:
    applier = GroupCommitDebits(clean_pg_store, BatchSettings(writers=1, linger=0.05))
    services = build_services(clean_pg_store, settings, clock=TickingClock(), debits=applier)
    try:
        await services.credits.credit("hot", 40, TransactionType.GRANT, "funds")
        before = applier.transactions
        results = await asyncio.gather(
            *(services.credits.use_operation("hot", "ai_chat_ollama") for _ in range(203)),
            *(services.credits.use_operation("hot", "bulk_import", 7) for _ in range(50)),
        )
        # 203 x 100 + 50 x 140 milli-credits: 27 credits charged, 300 carried.
        assert sum(-r.entry.amount for r in results) == 27
        assert applier.transactions - before < 50  # batched, not one by one
        balance = await services.credits.balance("hot")
        assert (balance.balance, balance.total_spent, balance.accrued_milli) == (13, 27, 300)
        carried = sorted(r.entry.metadata["pricing"]["accruedMilli"] for r in results)  # type: ignore[index]
        assert len(set(carried)) > 1  # each debit records the accrual after it
        usage = await services.credits.usage_by_operation(days=1)
        assert [(u.operation, u.calls, u.quantity, u.cost_milli) for u in usage] == [
            ("ai_chat_ollama", 203, 203, 20300),
            ("bulk_import", 50, 350, 7000),
        ]
        assert (await services.reconcile.run()).ok
    finally:
        await services.close()


async def test_partial_commits_record_what_they_charged(services: Services) -> None:
    await services.credits.credit("ben", 50, TransactionType.GRANT, "funds")
    plain = await services.reservations.reserve("ben", 10, "export")
    entry = await services.reservations.commit(plain.reservation.id, amount=4)
    done = await services.reservations.get(plain.reservation.id)
    assert (entry.amount, done.charged, done.priced) == (-4, 4, None)
    deep = await services.reservations.reserve_operation("ben", "ai_research_deep")
    assert deep.reservation.amount == 25
    await services.reservations.commit(deep.reservation.id, amount=7)
    done = await services.reservations.get(deep.reservation.id)
    assert done.priced == Priced("ai_research_deep", 1, 25000, 1, 25000)
    assert done.charged == 7
    bulk = await services.reservations.reserve_operation("ben", "bulk_import", 100)
    pending = await services.reservations.get(bulk.reservation.id)
    assert (pending.amount, pending.priced, pending.charged) == (
        2,
        Priced("bulk_import", 100, 200, 10, 2000),
        None,
    )
    # 33 items cost 0.66 credits: nothing is due yet, it accrues.
    entry = await services.reservations.commit(bulk.reservation.id, quantity=33)
    done = await services.reservations.get(bulk.reservation.id)
    assert (entry.amount, done.charged) == (0, 0)
    balance = await services.credits.balance("ben")
    assert (balance.balance, balance.total_spent, balance.accrued_milli) == (39, 11, 660)
    assert (await services.reconcile.run()).ok


async def test_deleting_a_user_erases_priced_usage_and_forgives_the_accrual(
    services: Services, store: Store
) -> None:
    await services.credits.credit("cleo", 5, TransactionType.GRANT, "funds")
    await services.credits.credit("dan", 5, TransactionType.GRANT, "funds")
    for _ in range(3):
        await services.credits.use_operation("cleo", "ai_chat_ollama")
    await services.credits.use_operation("dan", "ai_chat_ollama", 2)
    await services.users.delete("cleo")
    assert (await services.users.records("cleo")).operation_usage == []
    usage = await services.credits.usage_by_operation(days=1)
    assert [(u.calls, u.cost_milli) for u in usage] == [(1, 200)]
    async with store.reader() as reader:
        accrued = {b.user_id: b.accrued_milli async for b in reader.balances.iterate()}
    assert accrued.pop("dan") == 200
    assert list(accrued.values()) == [0]  # the pseudonymized balance


async def test_concurrent_changes_of_one_price_form_one_chain(services: Services) -> None:
    """Changes are timed under the operation's lock, so in time order each one starts
    from the price the one before it left (`prices history` rebuilds entries from it)."""
    await asyncio.gather(
        *(services.prices.set("pdf_export", str(n), operator=f"op{n}") for n in range(2, 14))
    )
    changes = await services.prices.history("pdf_export")
    assert len(changes) == 12
    for newer, older in itertools.pairwise(changes):
        assert newer.at >= older.at
        assert newer.old_price_milli == older.new_price_milli, (newer, older)
    assert changes[-1].old_price_milli == 1000  # the seeded price
    current = await services.prices.get("pdf_export")
    assert current.price_milli == changes[0].new_price_milli
