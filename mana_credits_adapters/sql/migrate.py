"""Run the Alembic migrations on an async engine (used by the CLI and on first start)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import ForeignTables
from .tables import CREDITS
from .target import redact

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision`; idempotent, and safe for concurrent starters."""

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Two processes starting at once must not both run DDL.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(727001)")
        refuse_foreign_tables(connection)
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda c: command.downgrade(alembic_config(c), revision))


async def current(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for an empty database."""

    async with engine.connect() as connection:
        return await connection.run_sync(_revision)


async def check_foreign_tables(engine: AsyncEngine) -> None:
    """`refuse_foreign_tables` on its own connection."""
    async with engine.connect() as connection:
        await connection.run_sync(refuse_foreign_tables)


def refuse_foreign_tables(connection: Connection) -> None:
    """Raise `ForeignTables` if the database has no revision yet but already holds a
    table this schema would create: the migrations would fail half-way on it, and such a
    database is most likely the old service's, named by mistake."""
    if _revision(connection) is not None:
        return
    schema = CREDITS if connection.dialect.name == "postgresql" else None
    inspector = sa.inspect(connection)
    found = [t for t in ("balances", "transactions") if inspector.has_table(t, schema=schema)]
    if found:
        shown = redact(connection.engine.url.render_as_string(hide_password=False))
        name = f"{schema}.{found[0]}" if schema else found[0]
        raise ForeignTables(
            f"{shown} already holds a table {name} that this service's migrations did not "
            "create (is it the old service's database?), name a new, empty database"
        )


def _revision(connection: Connection) -> str | None:
    schema = CREDITS if connection.dialect.name == "postgresql" else None
    context = MigrationContext.configure(connection, opts={"version_table_schema": schema})
    return context.get_current_revision()


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
