"""What the SQL repositories share to run statements: the dialect's INSERT (for its
upserts) and reads straight on the PostgreSQL driver."""

from __future__ import annotations

from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.rows import tuple_row
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.errors import StoreUnavailable

from .driver_reads import DeferredConnection


def insert_for(connection: AsyncConnection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has `on_conflict_do_*` on PostgreSQL and SQLite."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


async def driver_query(
    connection: AsyncConnection,
    sql: str,
    params: tuple[Any, ...],
    row_factory: Any = tuple_row,
) -> list[Any]:
    """Run a read on the driver under `connection` (PostgreSQL). A lost connection is
    `StoreUnavailable` (503) and is dropped from the pool, as SQLAlchemy would do.
    A reader that has not connected yet runs it on `DriverReads` instead."""
    if isinstance(connection, DeferredConnection):
        return await connection.reads.query(sql, params, row_factory)
    raw = await connection.get_raw_connection()
    try:
        cursor = raw.driver_connection.cursor(row_factory=row_factory)  # type: ignore[union-attr]
        await cursor.execute(sql, params)
        rows: list[Any] = await cursor.fetchall()
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        await connection.invalidate(exc)
        raise StoreUnavailable() from exc
    return rows


async def driver_query_batched(
    connection: AsyncConnection, sql: str, batched_sql: str, params: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    """A read on the driver (tuples) that, on a reader not connected yet, runs in one
    statement with the same reads of other requests (`DriverReads.batched`:
    `batched_sql` is `sql` over arrays of parameters, tagged with each read's
    position). Inside a unit of work it runs `sql` alone, on the work's connection."""
    if isinstance(connection, DeferredConnection):
        return await connection.reads.batched(sql, batched_sql, params)
    return await driver_query(connection, sql, params)


def bytewise(connection: AsyncConnection, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """`column` ordered byte by byte, as Python orders strings (the memory store):
    PostgreSQL's database collation may order `_` otherwise; SQLite's default does not."""
    return column.collate("C") if connection.dialect.name == "postgresql" else column
