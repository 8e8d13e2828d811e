"""Bulk inserts for the legacy import: rows whose primary key is present are skipped.

PostgreSQL stages each batch with COPY into a temporary copy of the table (its NOT NULL
and CHECK constraints included, so a bad row is refused at its COPY line, which names
it) and moves the batch across in one `INSERT ... SELECT ... ON CONFLICT (primary key)
DO NOTHING`: a handful of round trips per batch, whatever its size. SQLite runs one
executemany of `INSERT ... ON CONFLICT (primary key) DO NOTHING`.

Another unique key refusing a row, a broken check or a value the column does not take
comes out as `ImportRefused` (see `refusals`), never as a driver error. After one on
PostgreSQL the transaction is aborted; the import's caller leaves its block and rolls
back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

import psycopg
import sqlalchemy as sa
from psycopg import errors as pg_errors
from psycopg import sql
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.errors import StoreUnavailable
from mana_credits_core.legacy import ImportRefused

from ..sql.tables import UtcDateTime
from . import refusals
from .refusals import Row

# SQL NULL for a Python None in JSON columns (as the debit statements write it), not
# the JSON `null` SQLAlchemy's default would store.
NULLABLE_JSON = sa.JSON(none_as_null=True)
_COPY_LINE = re.compile(r"\bline (\d+)\b")
_PG_KEY = re.compile(r"^Key \(([^)]*)\)=\((.*)\) already exists\.?$", re.DOTALL)
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)$")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (.+)$")
_SQLITE_NOT_NULL = re.compile(r"NOT NULL constraint failed: \w+\.(\w+)$")


class BulkInsert(Protocol):
    async def insert(self, table: sa.Table, rows: Sequence[Row]) -> int:
        """Insert the `rows` (column name → value, as the repositories write them) whose
        primary key is not in `table`; return how many were inserted. Raises
        `ImportRefused` for a row the table's other constraints refuse."""
        ...


def bulk_for(connection: AsyncConnection) -> BulkInsert:
    if connection.dialect.name == "postgresql":
        return PostgresBulk(connection)
    return SqliteBulk(connection)


def primary_key(table: sa.Table) -> list[str]:
    return [column.name for column in table.primary_key.columns]


def written(table: sa.Table) -> list[sa.Column[Any]]:
    """The columns an insert gives values for: all but those the database computes
    (the lots' `is_open` and `has_free`)."""
    return [column for column in table.columns if column.computed is None]


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")  # as UtcDateTime says
    return value


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _converter(column: sa.Column[Any]) -> Callable[[Any], Any] | None:
    if isinstance(column.type, UtcDateTime):
        return _utc
    if isinstance(column.type, sa.JSON):
        return _json
    return None


class PostgresBulk:
    """COPY into `import_<table>` (temporary, dropped at the end of the transaction),
    then one INSERT ... SELECT into the table."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection
        self._staged: set[str] = set()

    async def insert(self, table: sa.Table, rows: Sequence[Row]) -> int:
        if not rows:
            return 0
        names = [column.name for column in written(table)]
        converters = [_converter(column) for column in written(table)]
        tuples = [
            tuple(
                row[name] if convert is None else convert(row[name])
                for name, convert in zip(names, converters, strict=True)
            )
            for row in rows
        ]
        raw = await self._c.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, psycopg.AsyncConnection)
        stage = sql.Identifier(f"import_{table.name}")
        target = sql.Identifier(str(table.schema), table.name)
        columns = sql.SQL(", ").join(sql.Identifier(name) for name in names)
        keys = sql.SQL(", ").join(sql.Identifier(name) for name in primary_key(table))
        try:
            async with driver.cursor() as cursor:
                if table.name not in self._staged:
                    await cursor.execute(
                        sql.SQL(
                            "CREATE TEMPORARY TABLE {} (LIKE {} INCLUDING DEFAULTS"
                            " INCLUDING CONSTRAINTS INCLUDING GENERATED) ON COMMIT DROP"
                        ).format(stage, target)
                    )
                    self._staged.add(table.name)
                copy_in = sql.SQL("COPY {} ({}) FROM STDIN").format(stage, columns)
                async with cursor.copy(copy_in) as copy:
                    for values in tuples:
                        await copy.write_row(values)
                await cursor.execute(
                    sql.SQL(
                        "INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO NOTHING"
                    ).format(target, columns, columns, stage, keys)
                )
                inserted = cursor.rowcount
                await cursor.execute(sql.SQL("TRUNCATE {}").format(stage))
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            await self._c.invalidate(exc)
            raise StoreUnavailable() from exc
        except (psycopg.IntegrityError, psycopg.DataError) as exc:
            raise _pg_refusal(table, rows, exc) from exc
        except pg_errors.InFailedSqlTransaction as exc:
            raise RuntimeError(
                "the import's transaction was aborted by an earlier refusal: leave its block"
            ) from exc
        return inserted


def _pg_refusal(table: sa.Table, rows: Sequence[Row], exc: psycopg.Error) -> ImportRefused:
    diag = exc.diag
    # A row refused while staged is named by its COPY line (1 = the batch's first row).
    line = _COPY_LINE.search(diag.context or "")
    row = rows[int(line.group(1)) - 1] if line and int(line.group(1)) <= len(rows) else None
    if isinstance(exc, pg_errors.UniqueViolation):
        found = _PG_KEY.match(diag.message_detail or "")
        if found is None:
            return refusals.collision(table, (diag.constraint_name or "?",), rows, None)
        columns = tuple(name.strip().strip('"') for name in found.group(1).split(","))
        match = refusals.unique_match(table, columns, found.group(2), rows)
        return refusals.collision(table, columns, rows, match)
    if isinstance(exc, pg_errors.CheckViolation):
        return refusals.broken_rule(table, diag.constraint_name or "?", row)
    if isinstance(exc, pg_errors.NotNullViolation):
        return refusals.missing_value(table, diag.column_name or "?", row)
    return refusals.bad_value(table, row, diag.message_primary or str(exc))


class SqliteBulk:
    """One executemany per batch; the change counter says how many rows went in."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection
        self._statements: dict[str, Any] = {}

    def _statement(self, table: sa.Table) -> Any:
        found = self._statements.get(table.name)
        if found is None:
            values = {
                column.name: sa.bindparam(
                    f"v_{column.name}",
                    type_=NULLABLE_JSON if isinstance(column.type, sa.JSON) else column.type,
                )
                for column in written(table)
            }
            found = (
                sqlite.insert(table)
                .values(values)
                .on_conflict_do_nothing(index_elements=primary_key(table))
            )
            self._statements[table.name] = found
        return found

    async def _changes(self) -> int:
        return int(await self._c.scalar(sa.text("SELECT total_changes()")) or 0)

    async def insert(self, table: sa.Table, rows: Sequence[Row]) -> int:
        if not rows:
            return 0
        statement = self._statement(table)
        params = [{f"v_{name}": value for name, value in row.items()} for row in rows]
        before = await self._changes()
        try:
            await self._c.execute(statement, params)
        except IntegrityError as refused:
            # Rows before the refused one are in; inserting one by one skips them (their
            # key is present) and stops at the refused row, which then has a name.
            for row, one in zip(rows, params, strict=True):
                try:
                    await self._c.execute(statement, one)
                except IntegrityError as exc:
                    raise _sqlite_refusal(table, rows, row, exc) from exc
            raise _sqlite_refusal(table, rows, None, refused) from refused
        return await self._changes() - before


def _sqlite_refusal(
    table: sa.Table, rows: Sequence[Row], row: Row | None, exc: IntegrityError
) -> ImportRefused:
    message = str(exc.orig)
    if found := _SQLITE_UNIQUE.search(message):
        named = found.group(1)
        if named.startswith("index "):  # an index on expressions names itself only
            return refusals.collision(table, (named,), rows, None)
        columns = tuple(part.strip().split(".")[-1] for part in named.split(","))
        return refusals.collision(table, columns, rows, row)
    if found := _SQLITE_CHECK.search(message):
        return refusals.broken_rule(table, found.group(1), row)
    if found := _SQLITE_NOT_NULL.search(message):
        return refusals.missing_value(table, found.group(1), row)
    return refusals.bad_value(table, row, message)
