"""`mana-credits db`: schema migrations."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from mana_credits_adapters.schema import SchemaOutdated as SchemaOutdated
from mana_credits_adapters.schema import check_schema as check_schema
from mana_credits_core.errors import CreditsError, InvalidInput

from .legacy import import_legacy
from .runtime import DatabaseUrl, console, err_console, reported, run, settings_for

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
    """Bring the schema up to date.

    Safe to run repeatedly and concurrently.

    Creates the SQLite file when missing (its folder must exist).

    \b
    Example:
      mana-credits db upgrade --database-url postgresql://mana@localhost/mana_credits
    """
    from mana_credits_adapters.sql import migrate  # alembic: only for this command

    async def work() -> str | None:
        async with opened(database_url, create=True) as engine:
            await _migrating(migrate.upgrade(engine, revision), revision)
            return await migrate.current(engine)

    console.print(f"database at revision {run(work)}")


@app.command()
def current(database_url: DatabaseUrl = None) -> None:
    """Print the schema revision of the database.

    `none` for an empty database.

    \b
    Example:
      mana-credits db current --database-url postgresql://mana@localhost/mana_credits
    """
    from mana_credits_adapters.sql import migrate  # alembic: only for this command

    async def work() -> str | None:
        async with opened(database_url, create=False) as engine:
            return await migrate.current(engine)

    found = run(work)
    console.print(f"{found or 'none'} (head: {migrate.head()})")


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


class ConfirmationRequired(CreditsError):
    """A destructive command run without `--yes` where nobody can be asked."""

    code = "confirmation_required"


@app.command()
def downgrade(
    revision: Annotated[
        str, typer.Argument(metavar="REVISION", help="Target revision, e.g. `base` or `0001`.")
    ],
    yes: Annotated[
        bool, typer.Option("--yes", help="Do it without asking (data in dropped tables is lost).")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Undo migrations down to REVISION (data is lost).

    Drops tables, so their data is lost.

    Asks first on a terminal; elsewhere (scripts, CI) --yes is required.

    \b
    Example:
      mana-credits db downgrade 0003 --yes
    """
    from mana_credits_adapters.sql import migrate  # alembic: only for this command

    if not yes:
        with reported():
            if not stdin_is_terminal():
                raise ConfirmationRequired(
                    f"db downgrade {revision} drops tables and deletes their data,"
                    " pass --yes to confirm"
                )
        from mana_credits_adapters.sql.target import redact

        with reported():
            shown = redact(settings_for(database_url).effective_database_url)
        if not typer.confirm(
            f"Downgrade {shown} to {revision}? Tables are dropped and their data is lost"
        ):
            err_console.print("nothing changed", markup=False, highlight=False)
            raise typer.Exit(1)

    async def work() -> None:
        async with opened(database_url, create=False) as engine:
            await _migrating(migrate.downgrade(engine, revision), revision)

    run(work)
    console.print(f"database downgraded to {revision}")


app.command("import-legacy")(import_legacy)
