"""Old service databases on the session's PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

import psycopg
import pytest
from psycopg import sql

from .fixture import conninfo, create_legacy_database, database_url

MakeDatabase = Callable[..., str]
T = TypeVar("T")


def drop_database(base_url: str, name: str) -> None:
    with psycopg.connect(conninfo(base_url), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def legacy_url(pg_url: str) -> Iterator[str]:
    """The hand-written old database, newest layout. Tests only read it."""
    name = f"legacy_{uuid.uuid4().hex[:8]}"
    yield create_legacy_database(pg_url, name)
    drop_database(pg_url, name)


@pytest.fixture(scope="session")
def older_legacy_url(pg_url: str) -> Iterator[str]:
    """The hand-written old database in an older layout (no grant, no reservations)."""
    name = f"legacy_older_{uuid.uuid4().hex[:8]}"
    yield create_legacy_database(pg_url, name, newest=False)
    drop_database(pg_url, name)


@pytest.fixture
def make_legacy_database(pg_url: str) -> Iterator[MakeDatabase]:
    """`make(newest=True) -> url`: a fresh old database of the test's own, to change."""
    made: list[str] = []

    def make(*, newest: bool = True) -> str:
        name = f"legacy_own_{uuid.uuid4().hex[:8]}"
        made.append(name)
        return create_legacy_database(pg_url, name, newest=newest)

    yield make
    for name in made:
        drop_database(pg_url, name)


@pytest.fixture
def empty_database(pg_url: str) -> Iterator[str]:
    """A database with nothing in it, on the session's server."""
    name = f"empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo(pg_url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield database_url(pg_url, name)
    drop_database(pg_url, name)


async def collect(stream: AsyncIterator[list[T]], *, batch: int | None = None) -> list[T]:
    """Every row of a stream; with `batch`, each batch must be full but the last."""
    batches = [rows async for rows in stream]
    if batch is not None:
        assert all(len(rows) == batch for rows in batches[:-1])
        assert batches
        assert 0 < len(batches[-1]) <= batch
    return [row for rows in batches for row in rows]
