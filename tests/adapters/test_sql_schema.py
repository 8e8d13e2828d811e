"""The SQL schema: migrations match the tables the code uses, and drift is detected."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql import migrate
from mana_credits_adapters.sql.store import SqlStore, create_engine
from mana_credits_adapters.sql.tables import balances, metadata
from mana_credits_core import TransactionType


async def test_migrations_create_exactly_the_tables_the_code_uses(sql_store: SqlStore) -> None:
    def differences(connection: sa.Connection) -> list[object]:
        postgres = connection.dialect.name == "postgresql"
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": postgres,
                "version_table_schema": "credits" if postgres else None,
                "include_name": lambda name, kind, _parent: (
                    kind != "schema" or name in (None, "credits", "gifts")
                ),
            },
        )
        # SQLite has the same tables without schemas; each database its own indexes
        # where they differ (`ddl_if`), which autogenerate does not tell apart itself.
        expected = sa.MetaData()
        for table in metadata.sorted_tables:
            copy = table.to_metadata(expected, schema=table.schema if postgres else None)  # type: ignore[arg-type]
            built = {i.name for i in table.indexes if _built_on(i, connection.dialect.name)}
            copy.indexes = {i for i in copy.indexes if i.name in built}
        return list(compare_metadata(context, expected))

    async with sql_store.engine.connect() as connection:
        diff = await connection.run_sync(differences)
    assert diff == []


def _built_on(index: sa.Index, dialect: str) -> bool:
    only = index._ddl_if  # set by `Index.ddl_if(dialect=...)`
    return only is None or only.dialect in (None, dialect)


async def test_upgrade_is_idempotent_and_downgrade_reverses_it(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        assert await migrate.current(engine) is None
        await migrate.upgrade(engine)
        await migrate.upgrade(engine)
        assert await migrate.current(engine) == migrate.head()
        await migrate.downgrade(engine, "base")
        assert await migrate.current(engine) is None
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
    finally:
        await engine.dispose()


async def test_reconcile_reports_drift_planted_in_the_database(
    sql_store: SqlStore, settings: Settings
) -> None:
    services = build_services(sql_store, settings, clock=TickingClock())
    await services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
    await services.credits.use("alice", 30, "chat", "x")
    await services.credits.credit("bob", 5, TransactionType.GRANT, "funds")
    assert (await services.reconcile.run()).ok
    async with sql_store.engine.begin() as connection:
        await connection.execute(
            sa.update(balances).where(balances.c.user_id == "alice").values(balance=71)
        )
    report = await services.reconcile.run()
    assert [(d.user_id, d.check, d.expected, d.found) for d in report.drifts] == [
        ("alice", "balance = ledger - held", 70, 71),
        ("alice", "lots remaining = balance + held", 71, 70),
    ]
    assert report.users_checked == 2
    assert (await services.reconcile.run(user_id="bob")).ok


async def test_the_database_refuses_a_negative_balance(sql_store: SqlStore) -> None:
    async with sql_store.engine.begin() as connection:
        await connection.execute(
            sa.insert(balances).values(
                user_id="x",
                balance=0,
                total_earned=0,
                total_spent=0,
                created_at=sa.func.now(),
                updated_at=sa.func.now(),
            )
        )
    try:
        async with sql_store.engine.begin() as connection:
            await connection.execute(
                sa.update(balances).where(balances.c.user_id == "x").values(balance=-1)
            )
    except sa.exc.IntegrityError:
        pass
    else:
        raise AssertionError("CHECK (balance >= 0) did not fire")


async def test_an_unreachable_database_is_store_unavailable(settings: Settings) -> None:
    from mana_credits_core import StoreUnavailable

    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", pool_timeout=1)
    store = SqlStore(engine)
    services = build_services(store, settings)
    try:
        with pytest.raises(StoreUnavailable):
            await services.credits.balance("alice")
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.close()
