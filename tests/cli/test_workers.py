"""`serve --workers auto`: one worker per usable CPU, as many as the database holds."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from mana_credits_adapters.errors import InvalidSetting
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_cli.workers import (
    auto_workers,
    connections_per_worker,
    parse_workers,
    usable_cpus,
)

from .conftest import invoke


def test_one_worker_per_cpu_when_the_database_holds_them() -> None:
    assert auto_workers(cpus=4, per_worker=41, connection_limit=997) == 4


def test_no_more_workers_than_the_database_connections_hold() -> None:
    # 97 connections at 41 a worker: two workers fit, a third would not.
    assert auto_workers(cpus=8, per_worker=41, connection_limit=97) == 2


def test_at_least_one_worker_even_when_the_pool_alone_is_too_large() -> None:
    assert auto_workers(cpus=8, per_worker=41, connection_limit=20) == 1


def test_one_worker_without_postgresql() -> None:
    # SQLite takes one writer at a time; a memory store lives in one process.
    assert auto_workers(cpus=8, per_worker=41, connection_limit=None) == 1


def test_connections_per_worker_counts_both_pools() -> None:
    settings = Settings(MANA_CREDITS_DB_POOL_SIZE=10, MANA_CREDITS_DB_MAX_OVERFLOW=5)
    assert connections_per_worker(settings) == (10 + 5) + (10 + 10)


def test_usable_cpus_is_this_process_affinity() -> None:
    assert usable_cpus() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(("text", "count"), [("auto", None), ("AUTO", None), ("1", 1), ("64", 64)])
def test_worker_counts_accepted(text: str, count: int | None) -> None:
    assert parse_workers(text) == count


@pytest.mark.parametrize("text", ["0", "65", "-1", "two", ""])
def test_worker_counts_refused(text: str) -> None:
    with pytest.raises(InvalidSetting, match="pass 1 to 64 or auto"):
        parse_workers(text)


def test_serve_refuses_a_bad_worker_count_in_one_line() -> None:
    code, out = invoke("serve", "--workers", "many")
    assert code == 1
    assert out.strip().splitlines() == [
        "error: invalid_setting: --workers many is not a worker count, pass 1 to 64 or auto"
    ]


@pytest.mark.postgres
async def test_postgresql_connection_limit_leaves_out_reserved_connections(
    pg_store: SqlStore,
) -> None:
    async with pg_store.engine.connect() as connection:
        most = (await connection.execute(sa.text("SHOW max_connections"))).scalar_one()
        reserved = (
            await connection.execute(sa.text("SHOW superuser_reserved_connections"))
        ).scalar_one()
    assert await pg_store.connection_limit() == int(most) - int(reserved)


@pytest.mark.sqlite
async def test_sqlite_has_no_connection_limit(sqlite_file_store: SqlStore) -> None:
    assert await sqlite_file_store.connection_limit() is None
