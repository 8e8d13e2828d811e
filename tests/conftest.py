"""Fixtures shared by every suite: the three stores, a ticking clock, wired services."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.memory import MemoryStore
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql import migrate
from mana_credits_adapters.sql.store import SqlStore, create_engine
from mana_credits_adapters.sql.tables import metadata
from mana_credits_core.ports import Store
from mana_credits_core.services import Services


STORES = [
    pytest.param("memory", marks=pytest.mark.memory),
    pytest.param("sqlite", marks=pytest.mark.sqlite),
    pytest.param("postgres", marks=pytest.mark.postgres),
]
SQL_STORES = STORES[1:]


def postgres_required() -> bool:
    return os.environ.get("MANA_CREDITS_REQUIRE_POSTGRES") == "1" or "CI" in os.environ


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL server for the session; in CI its absence fails the run."""
    from .pg_cluster import PostgresCluster, postgres_url

    cluster: PostgresCluster | None = None
    try:
        url, cluster = postgres_url()
    except Exception as exc:
        if postgres_required():
            pytest.fail(f"PostgreSQL is required but could not be started: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        yield url
    finally:
        if cluster is not None:
            cluster.stop()


@pytest.fixture(scope="session")
async def pg_store(pg_url: str) -> AsyncIterator[SqlStore]:
    engine = create_engine(pg_url, pool_size=30, max_overflow=70, pool_timeout=30)
    async with engine.begin() as connection:
        for schema in ("credits", "gifts"):
            await connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    await migrate.upgrade(engine)
    store = SqlStore(engine)
    yield store
    await store.close()


async def truncate(store: SqlStore) -> None:
    names = ", ".join(f"{t.schema}.{t.name}" for t in metadata.sorted_tables)
    async with store.engine.begin() as connection:
        await connection.execute(sa.text(f"TRUNCATE {names}"))


async def sqlite_store(path: Path) -> SqlStore:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate.upgrade(engine)
    return SqlStore(engine)


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each store adapter in turn, empty."""
    kind: str = request.param
    if kind == "memory":
        yield MemoryStore()
    elif kind == "sqlite":
        sqlite = await sqlite_store(tmp_path / "credits.db")
        yield sqlite
        await sqlite.close()
    else:
        pg: SqlStore = request.getfixturevalue("pg_store")
        await truncate(pg)
        yield pg


@pytest.fixture(params=SQL_STORES)
async def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    """The SQL stores only, for tests that need many real connections."""
    if request.param == "sqlite":
        sqlite = await sqlite_store(tmp_path / "credits.db")
        yield sqlite
        await sqlite.close()
    else:
        pg: SqlStore = request.getfixturevalue("pg_store")
        await truncate(pg)
        yield pg


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(MANA_CREDITS_HOME=tmp_path)


@pytest.fixture
def services(store: Store, clock: TickingClock, settings: Settings) -> Services:
    return build_services(store, settings, clock=clock)
