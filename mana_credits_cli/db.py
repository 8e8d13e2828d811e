"""`mana-credits db`: schema migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from mana_credits_core.errors import InvalidInput

from .runtime import DatabaseUrl, console, run, settings_for

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

app = typer.Typer(
    help="Create and migrate the database schema.", no_args_is_help=True, rich_markup_mode=None
)


@asynccontextmanager
async def opened(database_url: str | None, *, create: bool) -> AsyncIterator[AsyncEngine]:
    """The engine of the SQL store named by the URL, reached once (setup faults raised)."""
    # SQLAlchemy and alembic only for these commands: the CLI's start stays fast.
    from mana_credits_adapters.bootstrap import open_store
    from mana_credits_adapters.errors import UnsupportedDatabase
    from mana_credits_adapters.sql.store import SqlStore

    store = await open_store(settings_for(database_url), migrate=False, create=create, connect=True)
    try:
        if not isinstance(store, SqlStore):
            raise UnsupportedDatabase(
                "the in-memory store has no schema, use a postgresql:// or sqlite:// URL"
            )
        yield store.engine
    finally:
        await store.close()


async def _migrating(step: Awaitable[None], revision: str) -> None:
    from alembic.util import CommandError

    try:
        await step
    except CommandError as exc:
        raise InvalidInput(
            "revision", f"{exc} (asked: {revision}), pass `head`, `base` or a known revision"
        ) from exc


@app.command()
def upgrade(
    database_url: DatabaseUrl = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Bring the schema up to date (safe to run repeatedly and concurrently).

    Creates the SQLite file when missing (its folder must exist).

    Example: mana-credits db upgrade --database-url postgresql://mana@localhost/mana_credits
    """
    from mana_credits_adapters.sql import migrate  # alembic: only for this command

    async def work() -> str | None:
        async with opened(database_url, create=True) as engine:
            await _migrating(migrate.upgrade(engine, revision), revision)
            return await migrate.current(engine)

    console.print(f"database at revision {run(work)}")


@app.command()
def current(database_url: DatabaseUrl = None) -> None:
    """Print the schema revision the database is at (`none` for an empty one)."""
    from mana_credits_adapters.sql import migrate  # alembic: only for this command

    async def work() -> str | None:
        async with opened(database_url, create=False) as engine:
            return await migrate.current(engine)

    found = run(work)
    console.print(f"{found or 'none'} (head: {migrate.head()})")


@app.command()
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. `base` or `0001`.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Undo migrations down to REVISION (drops tables: data is lost)."""
    from mana_credits_adapters.sql import migrate  # alembic: only for this command

    async def work() -> None:
        async with opened(database_url, create=False) as engine:
            await _migrating(migrate.downgrade(engine, revision), revision)

    run(work)
    console.print(f"database downgraded to {revision}")
