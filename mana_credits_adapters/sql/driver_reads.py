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

Reads of one kind asked in the same turn of the event loop share one statement
(`batched`): under concurrent requests a balance or a history page then costs a share
of one round trip, not a round trip of its own (the driver's and the event loop's work
per statement was most of a balance read's CPU time). A lone read waits one turn of
the loop more than it would alone.
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
from psycopg.rows import tuple_row
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.errors import StoreUnavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

# Seconds a connection lives before it is closed on return (SQLAlchemy's pool_recycle).
RECYCLE = 1800.0
# At most this many reads share one statement; more start another.
BATCH_LIMIT = 64


class _Batch:
    """Reads waiting for one statement: their parameters and their answers to come."""

    __slots__ = ("params", "waiters")

    def __init__(self) -> None:
        self.params: list[tuple[Any, ...]] = []
        self.waiters: list[asyncio.Future[list[tuple[Any, ...]]]] = []


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
        self._open: dict[str, _Batch] = {}  # by statement: the batch still taking reads
        self._running: set[asyncio.Task[None]] = set()

    async def query(self, sql: str, params: tuple[Any, ...], row_factory: Any) -> list[Any]:
        """The rows of one read (`row_factory` as psycopg takes it). Raises
        `StoreUnavailable` when the database cannot be reached or the pool is exhausted."""
        if self._slots.locked():  # only then is there anything to wait for, and a timer
            try:
                async with asyncio.timeout(self._timeout):
                    await self._slots.acquire()
            except TimeoutError as exc:
                raise StoreUnavailable() from exc
        else:
            await self._slots.acquire()  # returns at once
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

    async def batched(
        self, sql: str, batched_sql: str, params: tuple[Any, ...]
    ) -> list[tuple[Any, ...]]:
        """The rows of one read (`sql` with `params`), run in one statement with the
        other reads of `sql` asked in the same turn of the event loop (up to BATCH_LIMIT).

        `batched_sql` takes one array per parameter (the reads' `params`, column by
        column) and answers rows whose first column is the 1-based position of the read
        they belong to (`unnest(...) WITH ORDINALITY`); a read alone runs `sql` (cheaper
        for the database). Returns this read's rows as tuples, in the statement's order.
        Raises as `query` does; a read that is cancelled leaves the others' statement
        running."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[tuple[Any, ...]]] = loop.create_future()
        batch = self._open.get(batched_sql)
        if batch is None or len(batch.waiters) >= BATCH_LIMIT:
            batch = self._open[batched_sql] = _Batch()
            # The task's first step runs on the loop's next turn: the reads asked on this
            # one have joined the batch by then.
            task = loop.create_task(self._run_batch(sql, batched_sql, batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        batch.params.append(params)
        batch.waiters.append(future)
        return await future

    async def _run_batch(self, sql: str, batched_sql: str, batch: _Batch) -> None:
        if self._open.get(batched_sql) is batch:
            del self._open[batched_sql]  # later reads start a batch of their own
        alone = len(batch.params) == 1
        try:
            if alone:
                rows = [(1, *row) for row in await self.query(sql, batch.params[0], tuple_row)]
            else:
                columns = tuple(list(column) for column in zip(*batch.params, strict=True))
                rows = await self.query(batched_sql, columns, tuple_row)
        except Exception as exc:
            for waiter in batch.waiters:
                if not waiter.done():
                    # Each its own exception: one raised in several tasks would gather
                    # their tracebacks.
                    failure = StoreUnavailable() if isinstance(exc, StoreUnavailable) else exc
                    if failure is not exc:
                        failure.__cause__ = exc.__cause__
                    waiter.set_exception(failure)
            return
        except BaseException:  # cancelled (the loop shutting down): so are the reads
            for waiter in batch.waiters:
                waiter.cancel()
            raise
        answers: list[list[tuple[Any, ...]]] = [[] for _ in batch.waiters]
        for row in rows:
            answers[row[0] - 1].append(row[1:])
        for waiter, answer in zip(batch.waiters, answers, strict=True):
            if not waiter.done():  # not cancelled meanwhile
                waiter.set_result(answer)

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
