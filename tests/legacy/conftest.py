"""Old service databases on the session's PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import TypeVar

import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from psycopg import sql

from mana_credits_adapters.identity.dev import SigningKey

from ..http.conftest import Jwks
from .fixture import conninfo, create_legacy_database, database_url
from .importing import Imported, Targets, import_legacy

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


@pytest.fixture(scope="session")
def targets(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Targets]:
    """Fresh stores to import into (PostgreSQL databases, SQLite files)."""
    made = Targets(pg_url, tmp_path_factory.mktemp("targets"))
    yield made
    made.drop_all()


@pytest.fixture(scope="session")
async def jwks() -> AsyncIterator[Jwks]:
    """The auth service's JWKS on loopback, for real tokens."""
    state = Jwks(SigningKey.generate())

    async def serve(request: web.Request) -> web.Response:
        return web.json_response(state.key.jwks())

    application = web.Application()
    application.router.add_get("/api/auth/jwks", serve)
    server = TestServer(application, host="127.0.0.1")
    await server.start_server()
    state.url = str(server.make_url("")).rstrip("/")
    yield state
    await server.close()


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("sqlite", marks=pytest.mark.sqlite),
    ],
)
def imported(request: pytest.FixtureRequest, targets: Targets, legacy_url: str) -> Imported:
    """The hand-written old database imported by the command into a PostgreSQL database
    (migrated first) or a new SQLite file (made by the import). Tests only read it;
    those that change things work on `targets.copy(imported.target)`."""
    target = (
        targets.postgres() if request.param == "postgres" else targets.sqlite(migrated_file=False)
    )
    started = datetime.now(UTC)
    report = import_legacy(legacy_url, target).report()
    return Imported(target, report, started)
