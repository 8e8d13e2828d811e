"""The SQL store: engines for PostgreSQL and SQLite, and the unit of work."""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, Protocol, Self, cast

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from mana_credits_core.errors import StoreUnavailable

from ..errors import CorruptDatabase, DatabaseUnreachable, SetupError
from .balances import SqlBalances
from .console import SqlConsole
from .driver_reads import DeferredConnection, DriverReads
from .entries import SqlLedger
from .gifts import SqlGifts
from .lots import SqlLots
from .prices import SqlPrices
from .purchases import SqlCustomers, SqlPackages, SqlPaymentEvents, SqlPurchases
from .reports import SqlReports
from .reservations import SqlReservations
from .sqlite_engine import sqlite_engine, sqlite_fault
from .sync import SqlSync
from .target import DatabaseTarget, failure_cause, redact
from .usage import SqlUsage
from .users import SqlUserData

# What getting a connection can raise when the database is away or the pool is
# exhausted (PoolTimeout: every connection busy; answer 503 now rather than queue).
CONNECT_FAILURES = (OperationalError, DBAPIError, OSError, TimeoutError, PoolTimeout)
# Seconds to establish a PostgreSQL connection (a `connect_timeout` in the URL wins): a
# server that drops packets is reported in seconds, not after the kernel gives up.
CONNECT_TIMEOUT = 5


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout: float = 5.0,
    echo: bool = False,
) -> AsyncEngine:
    """An async engine for `postgresql+psycopg://` or `sqlite+aiosqlite://` URLs.

    Nothing is opened yet, and no folder is created for a SQLite file (see
    `target.check_sqlite` for the checks made before).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return sqlite_engine(url, echo=echo)
    return create_async_engine(
        url,
        connect_args=_connect_args(parsed),
        pool_size=pool_size,
        max_overflow=max_overflow,
        # Fail fast with 503 when the pool is exhausted rather than queueing forever.
        pool_timeout=pool_timeout,
        # No ping per checkout (a round trip on every request): a connection found dead
        # fails its request with 503 and SQLAlchemy then discards every pooled
        # connection older than that failure, so the pool recovers in one step.
        pool_pre_ping=False,
        pool_recycle=1800,
        echo=echo,
    )


def reader_engine_for(engine: AsyncEngine) -> AsyncEngine:
    """A PostgreSQL engine for reads beside `engine`, its own pool of the same size.

    Its connections stay in autocommit for life: a read is one statement and one round
    trip, with no BEGIN, no ROLLBACK on return and no isolation switch per checkout.
    """
    size = engine.pool.size() if isinstance(engine.pool, sa.QueuePool) else 10
    return create_async_engine(
        engine.url,
        connect_args=_connect_args(engine.url),
        isolation_level="AUTOCOMMIT",
        pool_reset_on_return=None,
        pool_size=size,
        max_overflow=size,
        pool_timeout=5.0,
        pool_pre_ping=False,
        pool_recycle=1800,
    )


def _connect_args(url: sa.URL) -> dict[str, Any]:
    return {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT}


def unreachable(url: sa.URL, error: BaseException) -> SetupError:
    """`error` (a failed connection to the database at `url`) for people: where and why.

    `DatabaseUnreachable`, or the SQLite file's own fault (see `sqlite_fault`)."""
    fault = sqlite_fault(url, error)
    if fault is not None:
        return fault
    cause = failure_cause(error)
    if url.get_backend_name() == "sqlite":
        path = DatabaseTarget(url, redact(str(url))).sqlite_path
        return DatabaseUnreachable(
            f"cannot open SQLite database {path}: {cause}, check the file and its folder"
        )
    where = DatabaseTarget(url, "").address
    shown = redact(url.render_as_string(hide_password=False))  # redact() drops the driver
    return DatabaseUnreachable(
        f"cannot connect to PostgreSQL at {where} (DATABASE_URL {shown}): {cause}, "
        "check that PostgreSQL runs there and DATABASE_URL"
    )


class Closeable(Protocol):
    async def close(self) -> None: ...


class SqlStore:
    """A `Store` over one async engine (PostgreSQL or SQLite)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # Users of the engine that hold connections between calls (debit writers):
        # they give them back before the engine goes.
        self._holders: weakref.WeakSet[Closeable] = weakref.WeakSet()
        self._readers: AsyncEngine | None = None
        self._driver_reads: DriverReads | None = None
        # A damaged SQLite file stays damaged: once seen, readiness says so.
        self.damage: CorruptDatabase | None = None

    def fault(self, error: BaseException) -> SetupError | None:
        """`error` as the SQLite file's own fault (see `sqlite_fault`), remembered if
        the file is damaged."""
        found = sqlite_fault(self.engine.url, error)
        if isinstance(found, CorruptDatabase):
            self.damage = found
        return found

    @property
    def reader_engine(self) -> AsyncEngine:
        """Where `reader()` connects: the autocommit engine on PostgreSQL, else the one
        engine (SQLite readers skip the write lock instead)."""
        if self.dialect != "postgresql":
            return self.engine
        if self._readers is None:
            self._readers = reader_engine_for(self.engine)
        return self._readers

    @property
    def driver_reads(self) -> DriverReads:
        """The pool of the two hottest reads (PostgreSQL), sized as the reader engine's."""
        if self._driver_reads is None:
            pool = self.engine.pool
            size = pool.size() if isinstance(pool, sa.QueuePool) else 10
            timeout = pool.timeout() if isinstance(pool, sa.QueuePool) else 5.0
            self._driver_reads = DriverReads(
                self.engine.url,
                size=size,
                limit=2 * size,
                timeout=timeout,
                connect_timeout=CONNECT_TIMEOUT,
            )
        return self._driver_reads

    def holds_connections(self, holder: Closeable) -> None:
        self._holders.add(holder)

    def unit_of_work(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self)

    def reader(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self, read_only=True)

    async def ping(self) -> None:
        """Touch the database (readiness); raises `StoreUnavailable` (the driver's error
        as its `__cause__`)."""
        if self.damage is not None:
            raise StoreUnavailable() from self.damage
        try:
            async with self.engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
        except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
            self.fault(exc)
            raise StoreUnavailable() from exc

    async def check(self) -> None:
        """Touch the database; raises `DatabaseUnreachable` naming where and why."""
        try:
            await self.ping()
        except StoreUnavailable as exc:
            raise self.unreachable(exc) from exc

    async def connection_limit(self) -> int | None:
        """The connections PostgreSQL lets ordinary roles open (`max_connections` less
        `superuser_reserved_connections`), shared by everything using the server; None
        for SQLite. Raises `DatabaseUnreachable`."""
        if self.dialect != "postgresql":
            return None
        query = sa.text(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
        )
        try:
            async with self.engine.connect() as connection:
                return int((await connection.execute(query)).scalar_one())
        except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
            raise self.unreachable(exc) from exc

    def unreachable(self, error: BaseException) -> SetupError:
        """`error`, a failure to reach this store, as one line naming where and why."""
        return unreachable(self.engine.url, error)

    @property
    def shown_url(self) -> str:
        """The database URL for people: password hidden, driver names dropped."""
        return redact(self.engine.url.render_as_string(hide_password=False))

    @property
    def address(self) -> str:
        """Where the store is, for logs: `host:port` (PostgreSQL) or the SQLite file."""
        target = DatabaseTarget(self.engine.url, "")
        return target.address if self.dialect == "postgresql" else str(target.sqlite_path)

    def connections_in_use(self) -> int:
        """Connections checked out of the pool (for the metrics gauge)."""
        checked_out = getattr(self.engine.pool, "checkedout", None)
        return int(checked_out()) if callable(checked_out) else 0

    async def close(self) -> None:
        for holder in list(self._holders):
            await holder.close()
        if self._driver_reads is not None:
            await self._driver_reads.close()
        if self._readers is not None:
            await self._readers.dispose()
        await self.engine.dispose()


class SqlUnitOfWork:
    """One database transaction; rolled back on exit unless `commit()` was called."""

    def __init__(self, store: SqlStore, *, read_only: bool = False) -> None:
        self._store = store
        self._read_only = read_only
        self._connection: AsyncConnection | None = None
        # A PostgreSQL reader connects only when a statement needs it (`driver_reads`).
        self._deferred: DeferredConnection | None = None

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is not None:
            return self._connection
        if self._deferred is not None:
            # It offers what repositories use of a connection; see `DeferredConnection`.
            return cast(AsyncConnection, self._deferred)
        raise RuntimeError("unit of work used outside `async with`")

    @property
    def balances(self) -> SqlBalances:
        return SqlBalances(self.connection)

    @property
    def ledger(self) -> SqlLedger:
        return SqlLedger(self.connection)

    @property
    def reservations(self) -> SqlReservations:
        return SqlReservations(self.connection)

    @property
    def lots(self) -> SqlLots:
        return SqlLots(self.connection)

    @property
    def usage(self) -> SqlUsage:
        return SqlUsage(self.connection)

    @property
    def prices(self) -> SqlPrices:
        return SqlPrices(self.connection)

    @property
    def packages(self) -> SqlPackages:
        return SqlPackages(self.connection)

    @property
    def purchases(self) -> SqlPurchases:
        return SqlPurchases(self.connection)

    @property
    def customers(self) -> SqlCustomers:
        return SqlCustomers(self.connection)

    @property
    def payment_events(self) -> SqlPaymentEvents:
        return SqlPaymentEvents(self.connection)

    @property
    def gifts(self) -> SqlGifts:
        return SqlGifts(self.connection)

    @property
    def sync(self) -> SqlSync:
        return SqlSync(self.connection)

    @property
    def reports(self) -> SqlReports:
        return SqlReports(self.connection)

    @property
    def users(self) -> SqlUserData:
        return SqlUserData(self.connection)

    @property
    def console(self) -> SqlConsole:
        return SqlConsole(self.connection)

    async def __aenter__(self) -> Self:
        store = self._store
        if self._read_only and store.dialect == "postgresql":
            self._deferred = DeferredConnection(
                store.engine.dialect, store.driver_reads, self._connect_reader
            )
            return self
        await self._open()
        return self

    async def _connect_reader(self) -> AsyncConnection:
        if self._deferred is None:
            raise RuntimeError("unit of work used outside `async with`")
        if self._connection is None:
            await self._open()
        assert self._connection is not None
        return self._connection

    async def _open(self) -> None:
        try:
            if self._read_only:
                # No BEGIN/ROLLBACK around reads: each statement is its own snapshot.
                self._connection = await self._store.reader_engine.connect()
                if self._store.dialect != "postgresql":
                    await self._connection.execution_options(mana_read_only=True)
            else:
                self._connection = await self._store.engine.connect()
            await self._connection.begin()
        except BaseException as exc:
            # Cancelled during BEGIN IMMEDIATE too: that may have taken the write lock.
            await self._finish(cancelled=isinstance(exc, asyncio.CancelledError))
            if not isinstance(exc, CONNECT_FAILURES):
                raise
            fault = self._store.fault(exc)
            if fault is not None:
                raise fault from exc
            raise StoreUnavailable() from exc

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._finish(cancelled=isinstance(exc, asyncio.CancelledError))
        fault = self._store.fault(exc) if isinstance(exc, DBAPIError) else None
        if fault is not None:
            raise fault from exc
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            # The database went away mid-transaction: nothing was committed.
            raise StoreUnavailable() from exc
        if isinstance(exc, OperationalError | TimeoutError):
            raise StoreUnavailable() from exc

    async def _finish(self, *, cancelled: bool = False) -> None:
        """Roll back whatever is open and give the connection back to the pool.

        It runs to its end even if the caller is cancelled (again) meanwhile: a unit
        of work abandoned half-way must never keep its transaction, and on SQLite the
        write lock, until the connection is garbage collected.
        """
        self._deferred = None
        connection, self._connection = self._connection, None
        if connection is not None:
            await _uncancellable(_release(connection, cancelled=cancelled))

    async def commit(self) -> None:
        await self.connection.commit()

    async def rollback(self) -> None:
        await self.connection.rollback()


async def _release(connection: AsyncConnection, *, cancelled: bool) -> None:
    try:
        if connection.in_transaction():
            await connection.rollback()
        elif cancelled and connection.dialect.name == "sqlite" and not connection.invalidated:
            # A COMMIT (or BEGIN) cancelled half-way still runs in aiosqlite's thread and
            # holds the write lock until it ends. A rollback queued behind it waits for
            # that end (and undoes a BEGIN), so the lock is free once the caller resumes.
            raw = await connection.get_raw_connection()
            await raw.driver_connection.rollback()  # type: ignore[union-attr]
    except (OperationalError, DBAPIError, OSError, sqlite3.Error):
        pass  # the connection is gone; the server rolled the transaction back
    finally:
        await connection.close()


# Clean-ups under way whose caller was cancelled: held here so that they finish.
_CLEANUPS: set[asyncio.Future[None]] = set()


async def _uncancellable(work: Awaitable[None]) -> None:
    """Await `work`; a cancellation of the caller meanwhile is passed on to the caller
    at once, but `work` goes on to its end in the background."""
    task = asyncio.ensure_future(work)
    _CLEANUPS.add(task)
    task.add_done_callback(_CLEANUPS.discard)
    await asyncio.shield(task)
