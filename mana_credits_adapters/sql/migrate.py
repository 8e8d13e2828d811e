"""Run the Alembic migrations on an async engine (used by the CLI and on first start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from .tables import CREDITS

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
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda c: command.downgrade(alembic_config(c), revision))


async def current(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for an empty database."""

    def read(connection: Connection) -> str | None:
        schema = CREDITS if connection.dialect.name == "postgresql" else None
        context = MigrationContext.configure(connection, opts={"version_table_schema": schema})
        return context.get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
