"""Counting a user's ledger entries (the auth service's data summary reads it)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import transactions

# One index-only count on `(user_id, created_at, id)`; built once.
COUNT_OF = (
    sa.select(sa.func.count())
    .select_from(transactions)
    .where(transactions.c.user_id == sa.bindparam("user_id"))
)


class SqlLedgerCounts:
    """The `count` part of `SqlLedger`, kept apart from its writes and pages."""

    _c: AsyncConnection

    async def count(self, user_id: str) -> int:
        """How many entries the user has, of any type and status."""
        found = await self._c.scalar(COUNT_OF, {"user_id": user_id})
        return int(found or 0)
