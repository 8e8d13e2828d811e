"""Writes of many rows in few statements (the expiry sweep's and debit batches' writes).

With executemany, psycopg sends one statement per row (pipelined, but each planned and
run on its own): at tens of thousands of rows the round of statements dominates. On
PostgreSQL many rows go in one statement per table instead, a short one whatever the
number of rows: `UPDATE ... FROM unnest(arrays)` and `INSERT ... SELECT FROM
unnest(arrays)`, one array parameter a column (a multi-row VALUES would be a statement
as long as its rows, which the driver parses anew each time). SQLite runs in-process,
where executemany is cheap.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection


def _unnest(table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> sa.TableValuedAlias:
    """`rows` as one PostgreSQL `unnest` of one array parameter a column, named `given`
    (columns named as the rows' keys, typed as `table`'s)."""
    arrays = []
    for name in rows[0]:
        values = [row[name] for row in rows]
        item = table.c[name].type
        if isinstance(item, sa.JSON):
            # An array's items skip their type's bind processing: JSON goes as text,
            # encoded as SQLAlchemy encodes it (None as JSON null), cast back below.
            values = [json.dumps(value) for value in values]
            item = sa.Text()
        arrays.append(sa.cast(sa.bindparam(f"u_{name}", values), postgresql.ARRAY(item)))
    return sa.func.unnest(*arrays).table_valued(*rows[0]).render_derived(name="given")


def _column(table: sa.Table, given: sa.TableValuedAlias, name: str) -> sa.ColumnElement[Any]:
    """A column of `_unnest`, in its table column's type."""
    column = given.c[name]
    return sa.cast(column, postgresql.JSONB) if isinstance(table.c[name].type, sa.JSON) else column


async def update_rows(
    connection: AsyncConnection,
    table: sa.Table,
    key: str,
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Set the columns of each row of `table` whose `key` column equals the row's `key`
    value, to the row's other values. Every row of `rows` names the same columns."""
    if not rows:
        return
    names = list(rows[0])
    if connection.dialect.name == "postgresql":
        given = _unnest(table, rows)
        await connection.execute(
            sa.update(table)
            .where(table.c[key] == given.c[key])
            .values({name: _column(table, given, name) for name in names if name != key})
        )
        return
    await connection.execute(
        sa.update(table)
        .where(table.c[key] == sa.bindparam(f"u_{key}"))
        .values(
            {
                name: sa.bindparam(f"u_{name}", type_=table.c[name].type)
                for name in names
                if name != key
            }
        ),
        [{f"u_{name}": row[name] for name in names} for row in rows],
    )


async def insert_rows(
    connection: AsyncConnection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert `rows` into `table`. Every row of `rows` names the same columns."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        given = _unnest(table, rows)
        names = list(rows[0])
        await connection.execute(
            sa.insert(table).from_select(
                names, sa.select(*(_column(table, given, n) for n in names))
            )
        )
        return
    await connection.execute(sa.insert(table), list(rows))
