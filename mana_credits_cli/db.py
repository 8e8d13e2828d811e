"""`mana-credits db`: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from .runtime import DatabaseUrl, console, run, settings_for

app = typer.Typer(
    help="Create and migrate the database schema.", no_args_is_help=True, rich_markup_mode=None
)


@app.command()
def upgrade(
    database_url: DatabaseUrl = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Bring the schema up to date (safe to run repeatedly and concurrently).

    Example: mana-credits db upgrade --database-url postgresql://mana@localhost/mana_credits
    """
    from mana_credits_adapters.sql import migrate  # alembic: only for this command
    from mana_credits_adapters.sql.store import create_engine

    url = settings_for(database_url).effective_database_url

    async def work() -> str | None:
        engine = create_engine(url)
        try:
            await migrate.upgrade(engine, revision)
            return await migrate.current(engine)
        finally:
            await engine.dispose()

    console.print(f"database at revision {run(work)}")


@app.command()
def current(database_url: DatabaseUrl = None) -> None:
    """Print the schema revision the database is at (`none` for an empty one)."""
    from mana_credits_adapters.sql import migrate  # alembic: only for this command
    from mana_credits_adapters.sql.store import create_engine

    url = settings_for(database_url).effective_database_url

    async def work() -> str | None:
        engine = create_engine(url)
        try:
            return await migrate.current(engine)
        finally:
            await engine.dispose()

    found = run(work)
    console.print(f"{found or 'none'} (head: {migrate.head()})")


@app.command()
def downgrade(
    revision: Annotated[
        str, typer.Argument(metavar="REVISION", help="Target revision, e.g. `base` or `0001`.")
    ],
    database_url: DatabaseUrl = None,
) -> None:
    """Undo migrations down to REVISION (drops tables: data is lost)."""
    from mana_credits_adapters.sql import migrate  # alembic: only for this command
    from mana_credits_adapters.sql.store import create_engine

    url = settings_for(database_url).effective_database_url

    async def work() -> None:
        engine = create_engine(url)
        try:
            await migrate.downgrade(engine, revision)
        finally:
            await engine.dispose()

    run(work)
    console.print(f"database downgraded to {revision}")
