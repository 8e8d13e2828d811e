"""This service's SQL store as the legacy import's destination (`ImportTarget`).

The whole import is one database transaction: a dry run, an error or a killed process
leaves the store as it was. Two imports never interleave: on PostgreSQL the transaction
takes an advisory lock first (a second import waits for the first to finish); on SQLite
`BEGIN IMMEDIATE` takes the file's write lock, which also holds off the running
service's writes until the import ends.

Rows are the ones the repositories write for the same domain objects (the `*_values`
functions of `mana_credits_adapters.sql`), so imported data reads back like any other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.errors import StoreUnavailable
from mana_credits_core.gifts import GiftCode, GiftRedemption
from mana_credits_core.ledger import Balance, LedgerEntry, UsageStat
from mana_credits_core.legacy import ImportedBalance, ImportRefused, StripeCustomer
from mana_credits_core.lots import Allocation, Lot
from mana_credits_core.purchases import Package, Purchase
from mana_credits_core.reservations import Reservation
from mana_credits_core.sync import SyncSubscription

from ..sql.entries import entry_values
from ..sql.gifts import gift_values, redemption_values
from ..sql.lots import lot_values
from ..sql.purchases import package_values, purchase_values
from ..sql.reservations import reservation_values
from ..sql.statements import driver_query
from ..sql.store import SqlStore
from ..sql.sync import subscription_values
from ..sql.tables import (
    balances,
    credit_lots,
    gift_codes,
    gift_redemptions,
    hold_allocations,
    packages,
    purchases,
    reservations,
    stripe_customers,
    sync_subscriptions,
    transactions,
    usage_stats,
)
from ..sql.target import failure_cause
from .bulk import BulkInsert, bulk_for

# The key of the import's transaction-scoped advisory lock (the schema migrations hold
# 727001).
IMPORT_LOCK = 727002
T = TypeVar("T")


def balance_values(row: ImportedBalance) -> dict[str, Any]:
    b = row.balance
    return {
        "user_id": b.user_id,
        "balance": b.balance,
        "total_earned": b.total_earned,
        "total_spent": b.total_spent,
        "debt": b.debt,
        "accrued_milli": b.accrued_milli,  # the old service priced nothing below a credit
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "lots_since": row.lots_since,
        "email": None,  # the old service kept none; recorded at the user's next request
    }


def hold_values(row: tuple[str, Allocation]) -> dict[str, Any]:
    reservation_id, part = row
    return {"reservation_id": reservation_id, "lot_id": part.lot_id, "amount": part.amount}


def usage_values(stat: UsageStat) -> dict[str, Any]:
    return {
        "user_id": stat.user_id,
        "app_id": stat.app_id,
        "day": stat.day,
        "credits_used": stat.credits_used,
        "operations": stat.operations,
    }


def customer_values(customer: StripeCustomer) -> dict[str, Any]:
    return {
        "user_id": customer.user_id,
        "stripe_customer_id": customer.stripe_customer_id,
        "created_at": customer.created_at,
    }


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


PG_BALANCES = (
    "SELECT user_id, balance, total_earned, total_spent, debt, created_at, updated_at,"
    " lots_since FROM credits.balances"
)


class SqlImportWriter:
    """`ImportWriter` on one connection inside the import's transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection
        self._bulk: BulkInsert = bulk_for(connection)

    async def balances(self) -> dict[str, ImportedBalance]:
        """Every balances row, by user id (credits; timestamps aware, UTC)."""
        if self._c.dialect.name == "postgresql":
            # Every row of the table: straight from the driver, not through the
            # statement layer's per-row processing.
            rows: Iterable[Any] = await driver_query(self._c, PG_BALANCES, ())
        else:
            b = balances.c
            query = sa.select(
                b.user_id, b.balance, b.total_earned, b.total_spent, b.debt,
                b.created_at, b.updated_at, b.lots_since,
            )  # fmt: skip
            rows = (await self._c.execute(query)).all()
        return {
            user_id: ImportedBalance(
                Balance(user_id, balance, earned, spent, debt),
                _utc(created),
                _utc(updated),
                None if since is None else _utc(since),
            )
            for user_id, balance, earned, spent, debt, created, updated, since in rows
        }

    async def entry_counts(self) -> dict[str, int]:
        """Ledger entries per user, of any type and status (users with none absent)."""
        t = transactions.c
        query = sa.select(t.user_id, sa.func.count()).group_by(t.user_id)
        return {user_id: int(n) for user_id, n in (await self._c.execute(query)).all()}

    async def _write(
        self, table: sa.Table, rows: Sequence[T], values: Callable[[T], dict[str, Any]]
    ) -> int:
        return await self._bulk.insert(table, [values(row) for row in rows])

    async def write_balances(self, rows: Sequence[ImportedBalance]) -> int:
        return await self._write(balances, rows, balance_values)

    async def write_entries(self, rows: Sequence[LedgerEntry]) -> int:
        return await self._write(transactions, rows, entry_values)

    async def write_packages(self, rows: Sequence[Package]) -> int:
        return await self._write(packages, rows, package_values)

    async def write_purchases(self, rows: Sequence[Purchase]) -> int:
        return await self._write(purchases, rows, purchase_values)

    async def write_usage(self, rows: Sequence[UsageStat]) -> int:
        return await self._write(usage_stats, rows, usage_values)

    async def write_customers(self, rows: Sequence[StripeCustomer]) -> int:
        return await self._write(stripe_customers, rows, customer_values)

    async def write_subscriptions(self, rows: Sequence[SyncSubscription]) -> int:
        return await self._write(sync_subscriptions, rows, subscription_values)

    async def write_reservations(self, rows: Sequence[Reservation]) -> int:
        return await self._write(reservations, rows, reservation_values)

    async def write_gifts(self, rows: Sequence[GiftCode]) -> int:
        return await self._write(gift_codes, rows, gift_values)

    async def write_redemptions(self, rows: Sequence[GiftRedemption]) -> int:
        return await self._write(gift_redemptions, rows, redemption_values)

    async def write_lots(self, rows: Sequence[Lot]) -> int:
        return await self._write(credit_lots, rows, lot_values)

    async def write_holds(self, rows: Sequence[tuple[str, Allocation]]) -> int:
        return await self._write(hold_allocations, rows, hold_values)


class SqlImportTarget:
    """`ImportTarget` over a `SqlStore` (PostgreSQL or SQLite)."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    @asynccontextmanager
    async def transaction(self, *, commit: bool) -> AsyncIterator[SqlImportWriter]:
        """The import's one transaction; commits on a normal exit if `commit`, else
        rolls back. Waits for another import holding the store (PostgreSQL: for as long
        as it runs; SQLite: up to its busy timeout, 30 seconds, then `ImportRefused`).
        Raises `StoreUnavailable` when the database cannot be reached."""
        async with AsyncExitStack() as stack:
            try:
                unit = await stack.enter_async_context(self._store.unit_of_work())
            except StoreUnavailable as exc:
                if self._store.dialect == "sqlite" and "locked" in failure_cause(exc):
                    raise ImportRefused(
                        f"the SQLite database {self._store.address} stayed locked by "
                        f"another writer ({failure_cause(exc)}), wait for the other "
                        "import to finish (or stop mana-credits) and run the import again"
                    ) from exc
                raise
            if self._store.dialect == "postgresql":
                await unit.connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": IMPORT_LOCK}
                )
            yield SqlImportWriter(unit.connection)
            if commit:
                await unit.commit()
