"""The composition root: settings in, wired services out, everything closed on exit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from mana_credits_core.events import Events
from mana_credits_core.ports import (
    Clock,
    CodeGenerator,
    DebitApplier,
    IdGenerator,
    Notifier,
    PaymentGateway,
    Store,
)
from mana_credits_core.services import (
    ConsoleCatalogue,
    ConsoleService,
    CreditsService,
    GiftsService,
    LotsService,
    OverviewService,
    PricesService,
    PurchasesService,
    ReconcileService,
    ReconcileWatch,
    ReservationsService,
    Services,
    SyncService,
    UserEmails,
    UsersService,
)
from mana_credits_core.services.credits import UnitOfWorkDebits
from mana_credits_core.services.notices import LowBalanceAlerts
from mana_credits_core.services.sync import BATCHES_IN_FLIGHT

from .clock import SecretCodes, SystemClock, UuidGenerator
from .settings import Settings


async def open_store(
    settings: Settings,
    *,
    migrate: bool | None = None,
    create: bool = True,
    connect: bool = False,
) -> Store:
    """The store named by the settings' database URL (backends imported lazily).

    See `bootstrap` for `migrate`, `create` and `connect`, and the `SetupError`s raised.
    """
    url = settings.effective_database_url
    if url.startswith("memory://"):
        from .memory import MemoryStore

        return MemoryStore()
    from .sql import migrate as migrations
    from .sql.store import CONNECT_FAILURES, SqlStore, create_engine, unreachable
    from .sql.target import check_sqlite, parse

    target = parse(url)
    if target.backend == "sqlite":
        # Only the embedded default makes its own folder; a URL's folder must exist.
        home = None if settings.database_url else settings.home
        check_sqlite(target, create=create, home=home)
    engine = create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
    )
    store = SqlStore(engine)
    try:
        if settings.migrate_on_start if migrate is None else migrate:
            try:
                await migrations.upgrade(engine)
            except CONNECT_FAILURES as exc:
                raise unreachable(engine.url, exc) from exc
        elif connect:
            await store.check()
    except BaseException:
        await store.close()
        raise
    return store


def check_database_url(url: str) -> None:
    """Check a SQL database URL before anything is opened (front ends: a broken URL is
    the first thing to report). Raises `InvalidDatabaseUrl` or `UnsupportedDatabase`."""
    from .sql.target import parse

    parse(url)


def shown_database_url(url: str) -> str:
    """`url` with its password hidden, for banners and messages."""
    from .sql.target import redact

    return redact(url)


def failure_cause(error: BaseException) -> str:
    """The database driver's own words for why `error` (a `StoreUnavailable` or
    `DatabaseUnreachable`'s cause) happened, on one line, no password in them: for
    operators, never for API clients."""
    from .sql.target import failure_cause as cause

    return cause(error)


def open_debits(store: Store, settings: Settings) -> DebitApplier:
    """Group commit on PostgreSQL (unless turned off); one transaction per debit else."""
    if not settings.debit_batching or getattr(store, "dialect", None) != "postgresql":
        return UnitOfWorkDebits(store)
    from .sql.group_commit import BatchSettings, GroupCommitDebits
    from .sql.store import SqlStore

    assert isinstance(store, SqlStore)
    batching = BatchSettings(
        max_batch=settings.debit_batch_max,
        max_wait=settings.debit_batch_wait_ms / 1000,
        writers=settings.debit_writers,
    )
    return GroupCommitDebits(store, batching)


def open_payments(settings: Settings) -> PaymentGateway:
    """Stripe when `STRIPE_SECRET_KEY` is set, else the dev gateway."""
    if settings.stripe_secret_key:
        from .payments.stripe_gateway import StripeGateway

        return StripeGateway(
            settings.stripe_secret_key,
            settings.stripe_webhook_secret,
            api_base=settings.stripe_api_base or None,
        )
    from .payments.dev import DevGateway

    # The embedded default keeps its checkout key beside its signing key.
    return DevGateway(settings.base_url, settings.home if settings.is_embedded else None)


def open_notifier(settings: Settings) -> Notifier:
    """The notification service when `MANA_NOTIFY_URL` is set, else the log."""
    from .notify import HttpNotifier, LogNotifier

    if settings.notify_url:
        key = settings.service_keys[0] if settings.service_keys else ""
        return HttpNotifier(settings.notify_url, key)
    return LogNotifier()


def build_services(
    store: Store,
    settings: Settings,
    *,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    debits: DebitApplier | None = None,
    payments: PaymentGateway | None = None,
    codes: CodeGenerator | None = None,
    notifier: Notifier | None = None,
) -> Services:
    clock = clock or SystemClock()
    ids = ids or UuidGenerator()
    payments = payments or open_payments(settings)
    notifier = notifier or open_notifier(settings)
    events = Events()  # one for all the use cases, so one listener hears them all
    alerts = LowBalanceAlerts(notifier, settings.low_balance_credits)
    debit_applier = debits or open_debits(store, settings)
    reconcile = ReconcileService(store)
    watch = ReconcileWatch(reconcile, clock)
    credits = CreditsService(store, clock, ids, debit_applier, events, alerts)
    purchases = PurchasesService(store, clock, ids, payments, events)
    emails = UserEmails(store, clock)
    return Services(
        store=store,
        credits=credits,
        reservations=ReservationsService(
            store,
            clock,
            ids,
            ttl=timedelta(seconds=settings.reservation_ttl_seconds),
            alerts=alerts,
        ),
        purchases=purchases,
        gifts=GiftsService(store, clock, ids, codes or SecretCodes(), events),
        sync=SyncService(
            store,
            clock,
            ids,
            notifier,
            events,
            # SQLite serializes writers and the memory store bills row by row: one
            # batch at a time there; on PostgreSQL one is decided while another writes.
            batches_in_flight=(
                BATCHES_IN_FLIGHT if getattr(store, "dialect", None) == "postgresql" else 1
            ),
        ),
        reconcile=reconcile,
        users=UsersService(store, clock, ids, events, emails),
        lots=LotsService(store, clock, notifier),
        reconcile_watch=watch,
        overview=OverviewService(store, clock, watch),
        payments=payments,
        notifier=notifier,
        console=ConsoleService(store, clock, credits),
        catalogue=ConsoleCatalogue(store, clock, purchases),
        emails=emails,
        events=events,
        prices=PricesService(store, clock, ids),
    )


@asynccontextmanager
async def bootstrap(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    debits: DebitApplier | None = None,
    payments: PaymentGateway | None = None,
    notifier: Notifier | None = None,
    migrate: bool | None = None,
    create: bool = True,
    connect: bool = False,
) -> AsyncIterator[Services]:
    """Open the configured store and yield the services; close the store on exit.

    Pass `store=`, `clock=`, `ids=`, `debits=` or `payments=` to replace an adapter
    (tests, embedding). Adapters passed in are not closed here: their owner closes them.
    The embedded default also stocks an empty package catalogue with the defaults.

    - `migrate`: bring the schema up to date first (default: `Settings.migrate_on_start`,
      on for SQLite, off for PostgreSQL).
    - `create`: a SQLite file that does not exist may be created (its folder must exist;
      only the embedded default makes its home folder). `False` for callers that only
      read: nothing is written at all. A missing file raises `NoDatabase` and nothing is
      created, folders included; the schema is not migrated (unless `migrate=True` is
      passed) and the default catalogue is not stocked.
    - `connect`: touch the database before yielding, so an unreachable one fails here
      with `DatabaseUnreachable` rather than later with `StoreUnavailable`. Off for the
      server, which starts without its database and reports readiness instead.

    Raises a `mana_credits_adapters.errors.SetupError` (a `CreditsError`) naming the
    file, URL (password hidden) or setting and what to do: `InvalidDatabaseUrl`,
    `UnsupportedDatabase` (neither PostgreSQL nor SQLite), `NoDatabase`, `NoFolder`,
    `NotAFolder`, `NotWritable`, `CorruptDatabase` (not a SQLite file), and
    `DatabaseUnreachable` when migrating or connecting fails. Never a driver exception.
    """
    settings = settings or Settings()
    if migrate is None and not create:
        migrate = False  # a reader never changes the schema
    opened = (
        store
        if store is not None
        else await open_store(settings, migrate=migrate, create=create, connect=connect)
    )
    gateway = payments or open_payments(settings)
    notify = notifier or open_notifier(settings)
    services: Services | None = None
    try:
        services = build_services(
            opened,
            settings,
            clock=clock,
            ids=ids,
            debits=debits,
            payments=gateway,
            notifier=notify,
        )
        if store is None and settings.is_embedded and create:
            await services.purchases.ensure_default_catalogue()
        yield services
    finally:
        if services is not None and debits is None:
            await services.close()
        if payments is None:
            await gateway.close()
        if notifier is None:
            await notify.close()
        if store is None:
            await opened.close()
