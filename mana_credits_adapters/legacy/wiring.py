"""The legacy import's composition: the old database, this service's store, the use case."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from mana_credits_core.services.legacy_import import ImportOptions, LegacyImport

from ..clock import SystemClock
from ..errors import UnsupportedDatabase
from ..schema import check_schema
from ..settings import Settings


@asynccontextmanager
async def legacy_import(
    settings: Settings, source_url: str, *, dry_run: bool
) -> AsyncIterator[tuple[LegacyImport, ImportOptions]]:
    """The import from the old database at `source_url` into the store the settings
    name, with its options; closes both connections on exit.

    The store must be SQL (PostgreSQL or SQLite). A real import migrates it as the
    server would (per the settings: the embedded default, any store with
    `MANA_CREDITS_AUTO_MIGRATE=1`); a dry run changes nothing, so it needs
    a store already at the code's schema. Raises `SchemaOutdated` for a store behind
    it, `ForeignTables` for a database holding tables that are not this service's (the
    old database named as the target), and the `SetupError`s of `open_store` and of the
    source's connection (unreachable, refused credentials, no such database).
    """
    from ..bootstrap import open_store
    from ..sql import migrate
    from ..sql.store import SqlStore
    from .source import PostgresLegacySource
    from .target import SqlImportTarget

    store = await open_store(settings, migrate=False, create=not dry_run, connect=True)
    try:
        if not isinstance(store, SqlStore):
            raise UnsupportedDatabase(
                "the in-memory store keeps nothing, import into a postgresql:// or sqlite:// URL"
            )
        # The old database named as the target by mistake: its tables are not ours.
        await migrate.check_foreign_tables(store.engine)
        if not dry_run and settings.migrate_on_start:
            await migrate.upgrade(store.engine)
        await check_schema(store, settings.effective_database_url)
        options = ImportOptions(
            now=SystemClock().now(),
            reservation_ttl=timedelta(seconds=settings.reservation_ttl_seconds),
            dry_run=dry_run,
        )
        async with PostgresLegacySource.connect(source_url) as source:
            yield LegacyImport(source, SqlImportTarget(store)), options
    finally:
        await store.close()


def shown(settings: Settings, source_url: str) -> tuple[str, str]:
    """The source and target URLs for people (passwords hidden, driver names dropped)."""
    from ..sql.target import redact

    return redact(source_url), redact(settings.effective_database_url)
