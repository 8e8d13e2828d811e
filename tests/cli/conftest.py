"""The CLI's fixtures: a store URL for SQLite and PostgreSQL, and helpers to drive it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings
from mana_credits_cli.main import app
from mana_credits_core import TransactionType

runner = CliRunner()


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cli.db'}"
    url: str = request.getfixturevalue("pg_url")
    request.getfixturevalue("clean_pg_store")
    return url


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.memory),
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def any_store_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A store URL for commands that run on any store: the in-memory one too. The
    CLI opens a new store per command, so `memory://` here is one store shared by
    every command (and `seed`) of the test."""
    if request.param == "sqlite":
        created = f"sqlite:///{tmp_path / 'cli.db'}"
        asyncio.run(_migrated(created))  # read-only commands need the schema there
        return created
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        request.getfixturevalue("clean_pg_store")
        return url
    import mana_credits_adapters.bootstrap as bootstrapping
    from mana_credits_adapters.memory import MemoryStore

    shared = MemoryStore()

    async def open_shared(settings: Settings, **_: object) -> MemoryStore:
        return shared

    monkeypatch.setattr(bootstrapping, "open_store", open_shared)
    return "memory://"


async def _migrated(url: str) -> None:
    async with bootstrap(Settings(DATABASE_URL=url), migrate=True):
        pass


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Exit code and everything printed (stdout and stderr)."""
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def invoke_split(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Exit code, stdout and stderr apart."""
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def seed(url: str) -> None:
    async def work() -> None:
        async with bootstrap(Settings(DATABASE_URL=url), migrate=True) as services:
            await services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
            await services.credits.use("alice", 30, "chat", "answer")

    asyncio.run(work())
