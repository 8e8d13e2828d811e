"""The composition root: settings in, wired services out, everything closed on exit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from mana_credits_core.ports import Clock, DebitApplier, IdGenerator, Store
from mana_credits_core.services import (
    CreditsService,
    ReconcileService,
    ReservationsService,
    Services,
)

from .clock import SystemClock, UuidGenerator
from .settings import Settings


async def open_store(settings: Settings, *, migrate: bool | None = None) -> Store:
    """The store named by the settings' database URL (backends imported lazily)."""
    url = settings.effective_database_url
    if url.startswith("memory://"):
        from .memory import MemoryStore

        return MemoryStore()
    from .sql import migrate as migrations
    from .sql.store import SqlStore, create_engine

    engine = create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
    )
    if settings.migrate_on_start if migrate is None else migrate:
        try:
            await migrations.upgrade(engine)
        except BaseException:
            await engine.dispose()
            raise
    return SqlStore(engine)


def build_services(
    store: Store,
    settings: Settings,
    *,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    debits: DebitApplier | None = None,
) -> Services:
    clock = clock or SystemClock()
    ids = ids or UuidGenerator()
    return Services(
        store=store,
        credits=CreditsService(store, clock, ids, debits),
        reservations=ReservationsService(
            store, clock, ids, ttl=timedelta(seconds=settings.reservation_ttl_seconds)
        ),
        reconcile=ReconcileService(store),
    )


@asynccontextmanager
async def bootstrap(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    debits: DebitApplier | None = None,
    migrate: bool | None = None,
) -> AsyncIterator[Services]:
    """Open the configured store and yield the services; close the store on exit.

    Pass `store=`, `clock=`, `ids=` or `debits=` to replace an adapter (tests, embedding).
    A store passed in is not closed here: its owner closes it.
    """
    settings = settings or Settings()
    owned = store is None
    opened = store if store is not None else await open_store(settings, migrate=migrate)
    try:
        yield build_services(opened, settings, clock=clock, ids=ids, debits=debits)
    finally:
        if owned:
            await opened.close()
