"""The two hottest reads (a balance, a history page) on PostgreSQL, beside SQLAlchemy.

A read through SQLAlchemy's pool pays a checkout and a return (about 100 µs of Python,
more than the query itself). These reads take an autocommit psycopg connection from a
small pool of this module's instead: a list of idle connections and a bound on how many
are in use. Every other read checks out the reader engine's connection, and only when
it runs a statement (`DeferredConnection`).

Why not `psycopg_pool`: with the database away, its connections are made by background
workers retrying with backoff while a caller waits out the whole pool timeout; here a
caller that finds no idle connection connects itself and fails at once (503), as a
SQLAlchemy checkout does.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import psycopg
import sqlalchemy as sa
from psycopg.pq import TransactionStatus
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.errors import StoreUnavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

# Seconds a connection lives before it is closed on return (SQLAlchemy's pool_recycle).
RECYCLE = 1800.0


class DriverReads:
    """At most `size` idle autocommit connections to `url`, at most `limit` in use.

    A caller that waits more than `timeout` seconds for a connection in use to come
    back gets `StoreUnavailable` (503 now, as an exhausted SQLAlchemy pool answers).
    """

    def __init__(
        self, url: sa.URL, *, size: int, limit: int, timeout: float, connect_timeout: int
    ) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._connect_timeout = None if "connect_timeout" in url.query else connect_timeout
        # Timestamps in UTC, which entries are built in: the driver then hands over
        # `datetime.UTC` values, parsed and kept without a time-zone conversion.
        given = url.query.get("options", "")
        self._options = " ".join(
            [*(given if isinstance(given, tuple) else [given]), "-c TimeZone=UTC"]
        ).strip()
        self._size = size
        self._timeout = timeout
        self._slots = asyncio.BoundedSemaphore(limit)
        self._idle: list[tuple[psycopg.AsyncConnection[Any], float]] = []
        self._closed = False

    async def query(self, sql: str, params: tuple[Any, ...], row_factory: Any) -> list[Any]:
        """The rows of one read (`row_factory` as psycopg takes it). Raises
        `StoreUnavailable` when the database cannot be reached or the pool is exhausted."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise StoreUnavailable() from exc
        try:
            connection, born = await self._take()
            try:
                cursor = connection.cursor(row_factory=row_factory)
                await cursor.execute(sql, params)
                rows: list[Any] = await cursor.fetchall()
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                # The server went away (restart, failover): the idle ones are as stale.
                await connection.close()
                await self.drop_idle()
                raise StoreUnavailable() from exc
            except BaseException:
                await connection.close()  # cancelled mid-read, or a refused statement
                raise
            self._give_back(connection, born)
            return rows
        finally:
            self._slots.release()

    async def _take(self) -> tuple[psycopg.AsyncConnection[Any], float]:
        if self._idle:
            return self._idle.pop()
        extra: dict[str, Any] = {"options": self._options}
        if self._connect_timeout is not None:
            extra["connect_timeout"] = self._connect_timeout
        try:
            connection = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, **extra
            )
        except (psycopg.OperationalError, OSError) as exc:
            raise StoreUnavailable() from exc
        return connection, time.monotonic()

    def _give_back(self, connection: psycopg.AsyncConnection[Any], born: float) -> None:
        reusable = (
            not self._closed
            and len(self._idle) < self._size
            and connection.info.transaction_status == TransactionStatus.IDLE
            and time.monotonic() - born < RECYCLE
        )
        if reusable:
            self._idle.append((connection, born))
        else:
            # Closing a connection is a message to the server; not awaited on this path.
            task = asyncio.get_running_loop().create_task(connection.close())
            _CLOSING.add(task)
            task.add_done_callback(_CLOSING.discard)

    async def drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            await connection.close()

    async def close(self) -> None:
        """Close the idle connections; those in use close when they come back."""
        self._closed = True
        await self.drop_idle()


_CLOSING: set[asyncio.Task[None]] = set()


class DeferredConnection:
    """A reader's connection until a statement needs one.

    `driver_query` runs on `DriverReads`; any other statement first checks out the
    reader engine's connection (`connect`), then runs there.
    """

    def __init__(
        self,
        dialect: Dialect,
        reads: DriverReads,
        connect: Callable[[], Awaitable[AsyncConnection]],
    ) -> None:
        self.dialect = dialect
        self.reads = reads
        self._connect = connect

    def __getattr__(self, name: str) -> Any:
        method = getattr(AsyncConnection, name)
        if not inspect.iscoroutinefunction(method):
            raise AttributeError(f"{name} needs a connection: run a statement first")

        async def run(*args: Any, **kwargs: Any) -> Any:
            connection = await self._connect()
            return await getattr(connection, name)(*args, **kwargs)

        return run
