"""Why the store refused an imported row, said for the operator running the import.

The database names the rule a row broke; these turn that into `ImportRefused` naming the
table, the row and the value, and what to do about it. The import's transaction is
rolled back by its caller, so nothing the import wrote stays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from mana_credits_core.gifts import RedemptionStatus
from mana_credits_core.legacy import ImportRefused, TargetHoldsOtherData

Row = Mapping[str, Any]

# Unique keys that hold only for some rows (a partial unique index): the column and
# value a row needs for the key to bind it.
PARTIAL_KEYS: dict[tuple[str, tuple[str, ...]], tuple[str, str]] = {
    ("gift_redemptions", ("gift_code_id",)): ("status", RedemptionStatus.SUCCESS.value),
}
FIX_SOURCE = "correct it in the old database, then run the import again"


def qualified(table: sa.Table) -> str:
    """The table as PostgreSQL names it (`credits.transactions`), on every database."""
    return f"{table.schema}.{table.name}" if table.schema else table.name


def row_key(table: sa.Table, row: Row) -> str:
    """The row's primary key for people: `id` alone, or `(user_id, app_id, day)`."""
    values = [str(row[column.name]) for column in table.primary_key.columns]
    return values[0] if len(values) == 1 else f"({', '.join(values)})"


def _bound_by(table: sa.Table, columns: tuple[str, ...], row: Row) -> bool:
    if any(row.get(name) is None for name in columns):
        return False  # NULLs never collide
    partial = PARTIAL_KEYS.get((table.name, columns))
    return partial is None or row.get(partial[0]) == partial[1]


def _shown(columns: tuple[str, ...], values: Sequence[Any]) -> str:
    if len(columns) == 1:
        return f"{columns[0]} {values[0]}"
    return f"({', '.join(columns)}) = ({', '.join(str(v) for v in values)})"


def collision(
    table: sa.Table, columns: tuple[str, ...], rows: Sequence[Row], row: Row | None
) -> ImportRefused:
    """`row` of the batch `rows` (None when the database did not say which) was refused
    by the unique key `columns`: `TargetHoldsOtherData` when the holder is not in the
    batch, `ImportRefused` when two imported rows share the key."""
    name = qualified(table)
    if row is None:
        return TargetHoldsOtherData(
            f"a row imported into {name} has a {', '.join(columns)} that another row "
            "already holds, import into a new database or remove that row first",
            table=name,
            columns=list(columns),
        )
    values = [row[c] for c in columns]
    sharing = [
        r for r in rows if _bound_by(table, columns, r) and [r[c] for c in columns] == values
    ]
    shown = _shown(columns, values)
    if len(sharing) > 1:
        ids = ", ".join(row_key(table, r) for r in sharing)
        return ImportRefused(
            f"imported {name} rows {ids} all have {shown}, which this service allows "
            "only once, correct all but one in the old database, then run the import again",
            table=name,
            rows=[row_key(table, r) for r in sharing],
        )
    return TargetHoldsOtherData(
        f"{name} already holds another row with {shown}, which imported row "
        f"{row_key(table, row)} needs: the target has data that is not the old "
        f"database's, import into a new database or remove the {name} row with {shown} "
        "first",
        table=name,
        row=row_key(table, row),
        columns=list(columns),
        values=[str(v) for v in values],
    )


def unique_match(
    table: sa.Table, columns: tuple[str, ...], rendered: str, rows: Sequence[Row]
) -> Row | None:
    """The first row of `rows` whose key `columns`, written as PostgreSQL writes it in a
    unique violation's detail (values joined by ", "), is `rendered`."""
    for row in rows:
        if _bound_by(table, columns, row) and ", ".join(str(row[c]) for c in columns) == rendered:
            return row
    return None


def broken_rule(table: sa.Table, constraint: str, row: Row | None) -> ImportRefused:
    """`row` breaks the check constraint named `constraint` (its database name)."""
    name = qualified(table)
    rule = constraint
    for found in table.constraints:
        if isinstance(found, sa.CheckConstraint) and constraint in (
            found.name,
            f"ck_{table.name}_{found.name}",
        ):
            rule = f"{constraint} ({found.sqltext})"
    which = "a row" if row is None else f"row {row_key(table, row)}"
    return ImportRefused(
        f"{name} {which} breaks this service's rule {rule}, {FIX_SOURCE}",
        table=name,
        row=None if row is None else row_key(table, row),
        constraint=constraint,
    )


def missing_value(table: sa.Table, column: str, row: Row | None) -> ImportRefused:
    """`row` has no value for `column`, which this service requires."""
    name = qualified(table)
    which = "a row" if row is None else f"row {row_key(table, row)}"
    return ImportRefused(
        f"{name} {which} has no {column}, which this service requires, {FIX_SOURCE}",
        table=name,
        row=None if row is None else row_key(table, row),
        column=column,
    )


def bad_value(table: sa.Table, row: Row | None, cause: str) -> ImportRefused:
    """`row` holds a value its column does not take (too long, out of range...)."""
    name = qualified(table)
    which = "a row" if row is None else f"row {row_key(table, row)}"
    return ImportRefused(
        f"{name} {which} holds a value this service's schema does not take ({cause}), {FIX_SOURCE}",
        table=name,
        row=None if row is None else row_key(table, row),
    )
