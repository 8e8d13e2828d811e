"""Fixtures shared by every suite: the three stores, a ticking clock, wired services."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
import sqlalchemy as sa

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.memory import MemoryStore
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql import migrate
from mana_credits_adapters.sql.prices import price_values
from mana_credits_adapters.sql.store import SqlStore, create_engine
from mana_credits_adapters.sql.tables import metadata, prices
from mana_credits_core.ports import Store
from mana_credits_core.pricing import seeded
from mana_credits_core.services import Services

if TYPE_CHECKING:
    from execnet import XSpec
    from xdist.workermanage import WorkerController

    from .postgres import PostgresCluster

STORES = [
    pytest.param("memory", marks=pytest.mark.memory),
    pytest.param("sqlite", marks=pytest.mark.sqlite),
    pytest.param("postgres", marks=pytest.mark.postgres),
]
SQL_STORES = STORES[1:]


def postgres_required() -> bool:
    return os.environ.get("MANA_CREDITS_REQUIRE_POSTGRES") == "1" or "CI" in os.environ


def postgres_missing(exc: BaseException) -> NoReturn:
    """PostgreSQL could not be had: a failure in CI, a skip (with the reason) elsewhere."""
    if postgres_required():
        pytest.fail(f"PostgreSQL is required but could not be started: {exc}")
    pytest.skip(f"PostgreSQL not available: {exc}")


def own_cluster(*, durable: bool = False) -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of a test module's own (for tests that stop or crash it)."""
    from .postgres import PostgresCluster

    cluster = PostgresCluster(durable=durable)
    try:
        cluster.start()
    except Exception as exc:
        cluster.stop()
        postgres_missing(exc)
    try:
        yield cluster
    finally:
        cluster.stop()


# With pytest-xdist (`-n N`) the controller starts one PostgreSQL cluster for the run and
# each worker makes a database of its own on it (`pg_url`): one server's start and memory
# instead of N, no shared tables between workers. The controller stops the cluster when
# the run ends (its watchdog does if the controller itself is killed).
SHARED_URL = "mana_credits_pg_url"  # keys of a worker's `workerinput`
SHARED_ERROR = "mana_credits_pg_error"
shared_cluster = pytest.StashKey["PostgresCluster | None"]()
shared_postgres = pytest.StashKey[tuple[str, str]]()  # (url, why there is none)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: list[XSpec]) -> None:
    """In the controller, before any worker starts: the shared cluster, room for all."""
    from .postgres import postgres_url

    try:
        url, cluster = postgres_url(clients=len(specs))
    except Exception as exc:  # each worker fails or skips its PostgreSQL tests with it
        config.stash[shared_postgres] = ("", f"{type(exc).__name__}: {exc}")
        return
    config.stash[shared_cluster] = cluster
    config.stash[shared_postgres] = (url, "")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: WorkerController) -> None:
    url, error = node.config.stash.get(shared_postgres, ("", "not started"))
    node.workerinput[SHARED_URL] = url
    node.workerinput[SHARED_ERROR] = error


def pytest_unconfigure(config: pytest.Config) -> None:
    cluster = config.stash.get(shared_cluster, None)
    if cluster is not None:
        cluster.stop()


# Modules holding tests that take many seconds (a process killed mid-import, a 100k-row
# export, the model-based and fault tests, servers with workers), longest first. Under
# pytest-xdist they are handed out first, one test (or one module of ONE_WORKER_MODULES)
# at a time to whichever worker is free, so that no worker is still in one of them while
# the others have nothing left to do.
SLOW_MODULES = (
    "reliability/test_database_faults.py",
    "legacy/test_import_process.py",
    "reliability/test_stateful.py",
    "reliability/test_faults.py",
    "cli/test_cli.py",
    "reliability/test_races.py",
    "http/test_process.py",
    "reliability/test_database_away.py",
    "adapters/test_driver_reads.py",
    "legacy/test_target.py",
    "http/test_serve_process.py",
    "cli/test_setup_faults.py",
    "cli/test_input_errors.py",
    "cli/test_read_only.py",
    "cli/test_docs.py",
    "reliability/test_api_fuzz.py",
)
# Modules whose tests share something costly set up once per module (a server process,
# a PostgreSQL cluster of their own): each runs whole on one worker.
ONE_WORKER_MODULES = frozenset(
    {
        "tests/reliability/test_races.py",
        "tests/reliability/test_database_faults.py",
        "tests/reliability/test_database_away.py",
        "tests/adapters/test_driver_reads.py",
    }
)


@pytest.hookimpl(trylast=True)  # after pytest's own ordering by fixture scope
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):
        return  # a run in one process keeps pytest's order
    root = Path(__file__).parent
    rank = {str(root / path): index for index, path in enumerate(SLOW_MODULES)}
    items.sort(key=lambda item: rank.get(str(item.path), len(rank)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`-n N` (xdist's `--dist load`): one test at a time to a free worker, in the order
    above, a module of ONE_WORKER_MODULES all at once. (`xdist_group` marks would say the
    same, but xdist 3.8 cannot attach them to the test ids of pytest 9; and its
    `loadscope` schedulers go by test id, which the API fuzzing's tests share.)"""
    if config.getvalue("dist") != "load":
        return None  # another `--dist` asked for by name
    from xdist.scheduler import LoadScheduling

    class SlowFirst(LoadScheduling):  # type: ignore[misc]  # xdist has no type hints
        def __init__(self, config: pytest.Config, log: Any) -> None:
            super().__init__(config, log)
            if config.getoption("maxschedchunk") is None:  # unless given on the command line
                self.maxschedchunk = 1

        def _send_tests(self, node: Any, num: int) -> None:
            batch: list[int] = self.pending[:num]
            modules = {self._module(index) for index in batch} & ONE_WORKER_MODULES
            batch += [i for i in self.pending[num:] if self._module(i) in modules]
            if batch:
                chosen = set(batch)
                self.pending[:] = [i for i in self.pending if i not in chosen]
                self.node2pending[node].extend(batch)
                node.send_runtest_some(batch)

        def _module(self, index: int) -> str:
            return str(self.collection[index].split("::", 1)[0])

    return SlowFirst(config, log)


@pytest.fixture(scope="session")
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL database for the session (or for this xdist worker); in CI its
    absence fails the run."""
    from .postgres import DATABASE, create_database, drop_database, postgres_url

    worker: dict[str, str] | None = getattr(request.config, "workerinput", None)
    if worker is not None and SHARED_URL in worker:
        if not worker[SHARED_URL]:
            postgres_missing(RuntimeError(worker[SHARED_ERROR]))
        name = f"{DATABASE}_{worker['workerid']}"
        url = create_database(worker[SHARED_URL], name)
        try:
            yield url
        finally:
            drop_database(worker[SHARED_URL], name)
        return
    cluster: PostgresCluster | None = None
    try:
        url, cluster = postgres_url()
    except Exception as exc:
        postgres_missing(exc)
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
    """Empty every table, then seed the price list again as migration 0011 does: a test
    on PostgreSQL starts with the price list of a new memory or SQLite store."""
    names = ", ".join(f"{t.schema}.{t.name}" for t in metadata.sorted_tables)
    async with store.engine.begin() as connection:
        await connection.execute(sa.text(f"TRUNCATE {names}"))
        await connection.execute(
            sa.insert(prices), [price_values(p) for p in seeded(datetime.now(UTC))]
        )


async def sqlite_store(path: Path) -> SqlStore:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate.upgrade(engine)
    return SqlStore(engine)


@pytest.fixture
async def sqlite_file_store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    store = await sqlite_store(tmp_path / "credits.db")
    yield store
    await store.close()


@pytest.fixture
async def clean_pg_store(pg_store: SqlStore) -> SqlStore:
    await truncate(pg_store)
    return pg_store


# Sync fixtures choosing among async ones: pytest-asyncio cannot resolve an async
# fixture by name from inside another async fixture.
@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Store:
    """Each store adapter in turn, empty."""
    return store_named(request, request.param)


@pytest.fixture(params=SQL_STORES)
def sql_store(request: pytest.FixtureRequest) -> SqlStore:
    """The SQL stores only, for tests that need many real connections."""
    found = store_named(request, request.param)
    assert isinstance(found, SqlStore)
    return found


def store_named(request: pytest.FixtureRequest, kind: str) -> Store:
    if kind == "memory":
        return MemoryStore()
    name = "sqlite_file_store" if kind == "sqlite" else "clean_pg_store"
    found: Store = request.getfixturevalue(name)
    return found


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(MANA_CREDITS_HOME=tmp_path)


@pytest.fixture
async def services(
    store: Store, clock: TickingClock, settings: Settings
) -> AsyncIterator[Services]:
    built = build_services(store, settings, clock=clock)
    yield built
    # The debit writers (group commit on PostgreSQL) hand their connection back: a test
    # never inherits another's lingering connection or writer task.
    await built.close()
