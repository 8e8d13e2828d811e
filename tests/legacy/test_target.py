"""The legacy import's target on PostgreSQL and SQLite: rows written in one transaction
read back through the store's own repositories, exactly; nothing stays unless committed."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from mana_credits_adapters.legacy.target import SqlImportTarget
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_adapters.sql.tables import transactions
from mana_credits_core.ledger import Balance
from mana_credits_core.legacy import ImportedBalance, ImportRefused

from ..conftest import sqlite_store
from .rows import (
    AT,
    ONE_OF_EACH,
    USER,
    Rows,
    assert_empty,
    assert_stored,
    at,
    entry,
    rows,
    write_all,
)


async def test_every_kind_of_row_reads_back_as_written(sql_store: SqlStore) -> None:
    target = SqlImportTarget(sql_store)
    data = rows()
    async with target.transaction(commit=True) as writer:
        assert await write_all(writer, data) == ONE_OF_EACH
    await assert_stored(sql_store, data)
    async with target.transaction(commit=False) as writer:
        assert await writer.balances() == {USER: data.balance}
        assert await writer.entry_counts() == {USER: 2}
    async with sql_store.reader() as reader:
        # No metadata is SQL NULL, as a debit writes it, not the JSON value null.
        empty = await reader.connection.scalar(
            sa.select(transactions.c.id).where(transactions.c.metadata.is_(sa.null()))
        )
    assert empty == "entry-2"


async def test_a_second_import_inserts_nothing_and_changes_nothing(sql_store: SqlStore) -> None:
    target = SqlImportTarget(sql_store)
    data = rows()
    async with target.transaction(commit=True) as writer:
        await write_all(writer, data)
    changed = Rows(
        balance=ImportedBalance(Balance(USER, 1, 1, 0), at(9), at(9)),
        entries=[dataclasses.replace(e, amount=5, description="other") for e in data.entries],
        package=dataclasses.replace(data.package, credits=5),
        purchase=dataclasses.replace(data.purchase, clawed_back=0),
        usage=dataclasses.replace(data.usage, credits_used=1),
        customer=dataclasses.replace(data.customer, created_at=at(9)),
        subscription=dataclasses.replace(data.subscription, months_paid=9),
        reservation=dataclasses.replace(data.reservation, amount=1),
        gift=dataclasses.replace(data.gift, message="changed"),
        redemption=dataclasses.replace(data.redemption, credits_received=1),
    )
    async with target.transaction(commit=True) as writer:
        assert await write_all(writer, changed) == [0] * len(ONE_OF_EACH)
        assert await write_all(writer, data) == [0] * len(ONE_OF_EACH)
    await assert_stored(sql_store, data)


async def test_a_dry_run_sees_its_rows_and_leaves_nothing(sql_store: SqlStore) -> None:
    target = SqlImportTarget(sql_store)
    async with target.transaction(commit=False) as writer:
        assert await write_all(writer, rows()) == ONE_OF_EACH
        assert await writer.entry_counts() == {USER: 2}
    await assert_empty(sql_store)


async def test_an_error_inside_the_import_leaves_nothing(sql_store: SqlStore) -> None:
    target = SqlImportTarget(sql_store)

    async def fail_midway() -> None:
        async with target.transaction(commit=True) as writer:
            await write_all(writer, rows())
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        await fail_midway()
    await assert_empty(sql_store)


async def test_fifty_thousand_entries_go_in_one_batch(sql_store: SqlStore) -> None:
    target = SqlImportTarget(sql_store)
    many = [
        dataclasses.replace(
            entry(f"entry-{n:05}", key=f"k-{n}", metadata={"n": n}),
            user_id=f"user-{n % 100:03}",
            created_at=at(n / 86400),
        )
        for n in range(50_000)
    ]
    async with target.transaction(commit=True) as writer:
        assert await writer.write_entries(many) == 50_000
    async with target.transaction(commit=False) as writer:
        assert await writer.entry_counts() == {f"user-{u:03}": 500 for u in range(100)}
        assert await writer.write_entries(many[-1000:]) == 0


@pytest.mark.postgres
async def test_a_second_import_waits_for_the_first(clean_pg_store: SqlStore) -> None:
    target = SqlImportTarget(clean_pg_store)
    first_in, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with target.transaction(commit=True) as writer:
            await writer.write_balances([rows().balance])
            first_in.set()
            await release.wait()

    async def second() -> dict[str, ImportedBalance]:
        async with target.transaction(commit=False) as writer:
            return await writer.balances()

    async def waiting_on_the_lock() -> None:
        query = sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        while True:
            async with clean_pg_store.reader() as reader:
                if await reader.connection.scalar(query):
                    return
            await asyncio.sleep(0.01)

    holder = asyncio.create_task(first())
    waiter: asyncio.Task[dict[str, ImportedBalance]] | None = None
    try:
        await asyncio.wait_for(first_in.wait(), timeout=30)
        waiter = asyncio.create_task(second())
        await asyncio.wait_for(waiting_on_the_lock(), timeout=30)
        assert not waiter.done()
        release.set()
        await asyncio.wait_for(holder, timeout=30)
        # The second import started after the first committed: it sees the first's row.
        assert await asyncio.wait_for(waiter, timeout=30) == {USER: rows().balance}
    finally:
        release.set()
        for task in (holder, waiter):
            if task is not None and not task.done():
                task.cancel()
        await asyncio.gather(holder, *([waiter] if waiter else []), return_exceptions=True)


@pytest.mark.sqlite
async def test_a_second_import_on_sqlite_is_refused_while_the_first_holds_the_file(
    tmp_path: Path,
) -> None:
    store = await sqlite_store(tmp_path / "credits.db")

    @event.listens_for(store.engine.sync_engine, "connect")
    def _wait_briefly(dbapi_connection: Any, _record: Any) -> None:
        # After the store's own settings: give up on the write lock at once.
        dbapi_connection.execute("PRAGMA busy_timeout=50")

    await store.engine.dispose()  # connections opened before the listener go
    target = SqlImportTarget(store)
    try:
        async with target.transaction(commit=True) as writer:
            await writer.write_balances([rows().balance])
            with pytest.raises(ImportRefused, match="locked by another writer"):
                await open_second(target)
        async with target.transaction(commit=False) as writer:
            assert await writer.balances() == {USER: rows().balance}
    finally:
        await store.close()


async def open_second(target: SqlImportTarget) -> None:
    async with target.transaction(commit=True) as writer:
        await writer.write_balances([ImportedBalance(Balance("user-bob", 1, 1, 0), AT, AT)])
