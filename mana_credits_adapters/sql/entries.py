"""SQL repository for ledger entries: by id or idempotency key, history pages,
keyset pages for export, totals for reconciliation; and the entry row mapping."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from psycopg.rows import namedtuple_row
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.ledger import (
    ADJUSTMENT_EARNED,
    ADJUSTMENT_SPENT,
    LedgerEntry,
    TransactionStatus,
    TransactionType,
)
from mana_credits_core.ports import LedgerTotals

from ..entry_json import entries_json
from .entries_json import PG_HISTORIES_JSON, PG_HISTORY_JSON, history_page
from .ledger_counts import SqlLedgerCounts
from .statements import driver_query, driver_query_batched
from .tables import transactions

# Enum lookups by value, without the enum machinery's call per row (history pages
# build 50 entries each).
_TYPES = {t.value: t for t in TransactionType}
_STATUSES = {s.value: s for s in TransactionStatus}


def _utc(moment: datetime) -> datetime:
    # The driver's reads already come in UTC (`driver_reads`): no conversion then.
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def entry_from(row: Any) -> LedgerEntry:
    completed = row.completed_at
    return LedgerEntry(
        id=row.id,
        user_id=row.user_id,
        type=_TYPES.get(row.type) or TransactionType(row.type),
        status=_STATUSES.get(row.status) or TransactionStatus(row.status),
        amount=row.amount,
        balance_before=row.balance_before,
        balance_after=row.balance_after,
        app_id=row.app_id,
        description=row.description,
        metadata=row.metadata,
        idempotency_key=row.idempotency_key,
        created_at=_utc(row.created_at),
        completed_at=None if completed is None else _utc(completed),
    )


def entry_values(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "user_id": entry.user_id,
        "type": entry.type.value,
        "status": entry.status.value,
        "amount": entry.amount,
        "balance_before": entry.balance_before,
        "balance_after": entry.balance_after,
        "app_id": entry.app_id,
        "description": entry.description,
        "metadata": entry.metadata,
        "idempotency_key": entry.idempotency_key,
        "created_at": entry.created_at,
        "completed_at": entry.completed_at,
    }


class RowView:
    """Attribute access over a mapping, so `entry_from` reads rows of any shape
    (columns with a prefix, rows decoded from JSON)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


ENTRY_COLUMNS = (
    "id, user_id, type, status, amount, balance_before, balance_after, app_id,"
    " description, metadata, idempotency_key, created_at, completed_at"
)
PG_HISTORY = (
    f"SELECT {ENTRY_COLUMNS} FROM credits.transactions WHERE user_id = %s"
    " ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s"
)
PG_HISTORY_BEFORE = (
    f"SELECT {ENTRY_COLUMNS} FROM credits.transactions WHERE user_id = %s"
    " AND (created_at, id) < (%s, %s) ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s"
)


class SqlLedger(SqlLedgerCounts):
    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def get(self, entry_id: str) -> LedgerEntry | None:
        row = (
            await self._c.execute(sa.select(transactions).where(transactions.c.id == entry_id))
        ).first()
        return None if row is None else entry_from(row)

    async def by_idempotency_key(self, user_id: str, key: str) -> LedgerEntry | None:
        row = (
            await self._c.execute(
                sa.select(transactions).where(
                    transactions.c.user_id == user_id, transactions.c.idempotency_key == key
                )
            )
        ).first()
        return None if row is None else entry_from(row)

    async def list(
        self,
        user_id: str,
        *,
        limit: int,
        offset: int = 0,
        before: tuple[datetime, str] | None = None,
    ) -> list[LedgerEntry]:
        if self._c.dialect.name == "postgresql":
            return await self._list_postgres(user_id, limit, offset, before)
        t = transactions.c
        query = (
            sa.select(transactions)
            .where(t.user_id == user_id)
            .order_by(t.created_at.desc(), t.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if before is not None:
            query = query.where(sa.tuple_(t.created_at, t.id) < sa.tuple_(*before))
        return [entry_from(row) for row in await self._c.execute(query)]

    async def _list_postgres(
        self, user_id: str, limit: int, offset: int, before: tuple[datetime, str] | None
    ) -> builtins.list[LedgerEntry]:
        # History pages are the heaviest read: rows go from the driver straight into
        # entries, on the `(user_id, created_at, id)` index either way.
        if before is None:
            rows = await driver_query(self._c, PG_HISTORY, (user_id, limit, offset), namedtuple_row)
        else:
            params = (user_id, *before, limit, offset)
            rows = await driver_query(self._c, PG_HISTORY_BEFORE, params, namedtuple_row)
        return [entry_from(row) for row in rows]

    async def list_json(self, user_id: str, *, limit: int, offset: int = 0) -> bytes:
        if self._c.dialect.name == "postgresql":
            # PostgreSQL writes the page (`entries_json.py`): one row, one value.
            params = (user_id, limit, offset)
            rows = await driver_query_batched(self._c, PG_HISTORY_JSON, PG_HISTORIES_JSON, params)
            page = history_page(*rows[0])
            if page is not None:
                return page
        return entries_json(await self.list(user_id, limit=limit, offset=offset))

    async def page_forward(
        self,
        *,
        limit: int,
        after: tuple[datetime, str] | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
    ) -> builtins.list[LedgerEntry]:
        t = transactions.c
        query = sa.select(transactions).order_by(t.created_at, t.id).limit(limit)
        if user_id is not None:
            query = query.where(t.user_id == user_id)
        if since is not None:
            query = query.where(t.created_at >= since)
        if after is not None:
            query = query.where(sa.tuple_(t.created_at, t.id) > sa.tuple_(*after))
        return [entry_from(row) for row in await self._c.execute(query)]

    async def totals(self) -> Mapping[str, LedgerTotals]:
        t = transactions.c
        # The same rule as `totals_of`: an adjustment's totals come from its metadata.
        adjustment = t.type == TransactionType.ADJUSTMENT.value

        def correction(key: str) -> sa.ColumnElement[int]:
            return sa.func.coalesce(t.metadata[key].as_integer(), 0)

        query = (
            sa.select(
                t.user_id,
                sa.func.sum(t.amount).label("net"),
                sa.func.sum(
                    sa.case(
                        (adjustment, correction(ADJUSTMENT_EARNED)),
                        (t.amount > 0, t.amount),
                        else_=0,
                    )
                ).label("earned"),
                sa.func.sum(
                    sa.case(
                        (adjustment, correction(ADJUSTMENT_SPENT)),
                        (t.amount < 0, -t.amount),
                        else_=0,
                    )
                ).label("spent"),
            )
            .where(t.status == TransactionStatus.COMPLETED.value)
            .group_by(t.user_id)
        )
        return {
            row.user_id: LedgerTotals(int(row.net), int(row.earned), int(row.spent))
            for row in await self._c.execute(query)
        }
