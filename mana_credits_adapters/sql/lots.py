"""SQL credit lots: a `LotBook` over locked rows, its writes, the expiry sweep and
reconciliation's reads (the rules themselves are the core's `LotBook`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.ledger import Balance, LedgerEntry, TransactionType
from mana_credits_core.lot_book import LotBook, Writes, expire_all
from mana_credits_core.lots import EXPIRY_NOTICE, Allocation, Lot, LotSource
from mana_credits_core.ports import Expiring, LotDrift, LotTotals
from mana_credits_core.reservations import ReservationStatus

from .bulk import insert_rows, update_rows
from .entries import entry_from, entry_values
from .tables import (
    balances,
    credit_lots,
    hold_allocations,
    lot_allocations,
    reservations,
    transactions,
)
from .usage import count_operation, count_usage

l = credit_lots.c  # noqa: E741 - the lots table's columns, as elsewhere `b`, `t`, `r`


def lot_values(lot: Lot) -> dict[str, Any]:
    return {
        "id": lot.id,
        "user_id": lot.user_id,
        "source": lot.source.value,
        "amount": lot.amount,
        "remaining": lot.remaining,
        "held": lot.held,
        "priority": lot.priority,
        "expires_at": lot.expires_at,
        "created_at": lot.created_at,
        "entry_id": lot.entry_id,
        "purchase_id": lot.purchase_id,
        "expired_at": lot.expired_at,
        "notified_at": None,
    }


def lot_from(row: Any) -> Lot:
    return Lot(
        id=row.id,
        user_id=row.user_id,
        source=LotSource(row.source),
        amount=row.amount,
        remaining=row.remaining,
        priority=row.priority,
        expires_at=row.expires_at,
        created_at=row.created_at,
        held=row.held,
        entry_id=row.entry_id,
        purchase_id=row.purchase_id,
        expired_at=row.expired_at,
    )


async def lock_balances(
    connection: AsyncConnection, which: sa.ColumnElement[bool]
) -> list[Balance]:
    """Lock the balance rows `which` selects, in user order (as every writer of
    balances and lots takes them, so two writers never deadlock); returns them."""
    b = balances.c
    locked = await connection.execute(
        sa.select(b.user_id, b.balance, b.total_earned, b.total_spent, b.debt, b.accrued_milli)
        .where(which)
        .order_by(b.user_id)
        .with_for_update()
    )
    return [Balance(*row) for row in locked]


async def locked_book(
    connection: AsyncConnection, user_ids: Iterable[str], keys: Iterable[tuple[str, str]] = ()
) -> LotBook:
    """Lock the users' balance rows (in user order, as every writer does) and read their
    open lots and the entries already under `keys` (user id, idempotency key).

    The lots are read by a statement of their own, after the lock: under READ
    COMMITTED it sees what the lock's previous holder committed, which a read inside
    the locking statement would not. SQLite writers are serialised by BEGIN IMMEDIATE.
    """
    users = sorted(set(user_ids))
    found = await lock_balances(connection, balances.c.user_id.in_(users))
    lots = await connection.execute(sa.select(credit_lots).where(l.user_id.in_(users), l.is_open))
    open_lots = [lot_from(row) for row in lots]
    priors: dict[tuple[str, str], LedgerEntry] = {}
    wanted = list(dict.fromkeys(keys))
    if wanted:
        t = transactions.c
        query = sa.select(transactions).where(sa.tuple_(t.user_id, t.idempotency_key).in_(wanted))
        for row in await connection.execute(query):
            priors[(row.user_id, row.idempotency_key)] = entry_from(row)
    return LotBook(found, open_lots, priors)


async def write(connection: AsyncConnection, writes: Writes) -> None:
    """Make a book's writes: balances, entries, lots, allocations, holds, usage and
    priced usage; one statement a table on PostgreSQL (`bulk`), one upsert a usage row."""
    if not writes:
        return
    c = connection
    await update_rows(
        c,
        balances,
        "user_id",
        [
            {
                "user_id": x.user_id,
                "balance": x.balance,
                "total_earned": x.total_earned,
                "total_spent": x.total_spent,
                "debt": x.debt,
                "accrued_milli": x.accrued_milli,
                "updated_at": writes.at,
            }
            for x in writes.balances.values()
        ],
    )
    await insert_rows(c, transactions, [entry_values(e) for e in writes.entries])
    await update_rows(
        c,
        credit_lots,
        "id",
        [
            {
                "id": lot.id,
                "remaining": lot.remaining,
                "held": lot.held,
                "expired_at": lot.expired_at,
            }
            for lot in writes.lots.values()
        ],
    )
    await insert_rows(
        c,
        lot_allocations,
        [
            {"entry_id": entry_id, "lot_id": a.lot_id, "amount": a.amount}
            for entry_id, a in writes.allocations
        ],
    )
    if writes.released:
        h = hold_allocations.c
        await c.execute(sa.delete(hold_allocations).where(h.reservation_id.in_(writes.released)))
    await insert_rows(
        c,
        hold_allocations,
        [
            {"reservation_id": reservation_id, "lot_id": a.lot_id, "amount": a.amount}
            for reservation_id, a in writes.holds
        ],
    )
    for key, (used, operations) in writes.usage.items():
        await count_usage(c, key, used, operations)
    for op_key, counts in writes.operations.items():
        await count_operation(c, op_key, counts)


async def add_lot(connection: AsyncConnection, lot: Lot) -> None:
    await connection.execute(sa.insert(credit_lots).values(lot_values(lot)))


async def holds_of(connection: AsyncConnection, reservation_id: str) -> list[Allocation]:
    h = hold_allocations.c
    query = (
        sa.select(h.lot_id, h.amount).where(h.reservation_id == reservation_id).order_by(h.lot_id)
    )
    return [Allocation(row.lot_id, row.amount) for row in await connection.execute(query)]


def _unannounced(now: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    """The lots `lots.to_notify` picks at `now`, not announced yet."""
    return (
        l.expires_at > now,
        l.expires_at <= now + EXPIRY_NOTICE,
        l.is_open,
        l.notified_at.is_(None),
        l.expires_at.is_not(None),  # implied, but it lets the planner use the index
    )


class SqlLots:
    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def of_user(self, user_id: str) -> list[Lot]:
        query = sa.select(credit_lots).where(l.user_id == user_id).order_by(l.created_at, l.id)
        return [lot_from(row) for row in await self._c.execute(query)]

    async def allocations(self, entry_id: str) -> list[Allocation]:
        a = lot_allocations.c
        query = sa.select(a.lot_id, a.amount).where(a.entry_id == entry_id).order_by(a.lot_id)
        return [Allocation(row.lot_id, row.amount) for row in await self._c.execute(query)]

    async def holds(self, reservation_id: str) -> list[Allocation]:
        return await holds_of(self._c, reservation_id)

    async def due(self, now: datetime, limit: int) -> list[str]:
        query = (
            sa.select(l.user_id)
            .where(l.expires_at <= now, l.has_free, l.expired_at.is_(None))
            .order_by(l.expires_at)
            .limit(limit)
        )
        return list(dict.fromkeys((await self._c.scalars(query)).all()))

    async def expiring(self, until: datetime) -> Expiring:
        free = l.remaining - l.held
        query = sa.select(
            sa.func.coalesce(sa.func.sum(free), 0),
            sa.func.count(sa.distinct(l.user_id)),
            sa.func.count(l.id),
        ).where(l.expires_at <= until, l.expired_at.is_(None), free > 0)
        credits, users, lots = (await self._c.execute(query)).one()
        return Expiring(credits=int(credits), users=int(users), lots=int(lots))

    async def expire(self, user_ids: Sequence[str], now: datetime) -> list[LedgerEntry]:
        book = await locked_book(self._c, user_ids)
        entries = expire_all(book, user_ids, now)
        await write(self._c, book.writes)
        return entries

    async def notice_due(self, now: datetime, limit: int) -> list[str]:
        query = (
            sa.select(l.user_id).where(*_unannounced(now)).order_by(l.expires_at, l.id).limit(limit)
        )
        return list(dict.fromkeys((await self._c.scalars(query)).all()))

    async def claim_notices(self, user_id: str, now: datetime) -> list[Lot]:
        # The balance row first, as every writer of lots takes it: a claim then never
        # holds a lot row that a sweep or a debit (which lock the balance first) is
        # about to update, so the two cannot deadlock.
        await lock_balances(self._c, balances.c.user_id == user_id)
        # One conditional UPDATE: a concurrent claim of the same row waits for the
        # row lock, then re-checks `notified_at IS NULL` (PostgreSQL READ COMMITTED)
        # or is serialised by BEGIN IMMEDIATE (SQLite), so each lot is claimed once.
        claim = (
            sa.update(credit_lots)
            .where(l.user_id == user_id, *_unannounced(now))
            .values(notified_at=now)
            .returning(*credit_lots.c)
        )
        claimed = [lot_from(row) for row in await self._c.execute(claim)]
        return sorted(claimed, key=lambda lot: (lot.expires_at, lot.id))

    async def release_notices(self, lot_ids: Sequence[str], claimed_at: datetime) -> None:
        if lot_ids:
            owners = sa.select(l.user_id).where(l.id.in_(list(lot_ids)))
            # The owners' balance rows first, as in claim_notices.
            await lock_balances(self._c, balances.c.user_id.in_(owners))
            await self._c.execute(
                sa.update(credit_lots)
                .where(l.id.in_(list(lot_ids)), l.notified_at == claimed_at)
                .values(notified_at=None)
            )

    async def totals(self) -> Mapping[str, LotTotals]:
        query = sa.select(l.user_id, sa.func.sum(l.remaining), sa.func.sum(l.held)).group_by(
            l.user_id
        )
        return {
            user_id: LotTotals(int(remaining), int(held))
            for user_id, remaining, held in await self._c.execute(query)
        }

    async def drifts(self, limit: int) -> list[LotDrift]:
        t, b, a, r = transactions.c, balances.c, lot_allocations.c, reservations.c
        h = hold_allocations.c
        counted = (
            t.status == "completed",
            t.type != TransactionType.ADJUSTMENT.value,
            sa.or_(b.lots_since.is_(None), t.created_at > b.lots_since),
        )
        with_balance = transactions.join(balances, b.user_id == t.user_id)
        paid = sa.func.coalesce(sa.func.sum(a.amount), 0)
        debits = (
            sa.select(t.user_id, t.id, -t.amount, paid)
            .select_from(with_balance.outerjoin(lot_allocations, a.entry_id == t.id))
            .where(t.amount < 0, *counted)
            .group_by(t.user_id, t.id, t.amount)
            .having(paid != -t.amount)
            .order_by(t.user_id, t.id)
            .limit(limit)
        )
        lot_amount = sa.func.coalesce(sa.func.sum(l.amount), 0)
        credits = (
            sa.select(t.user_id, t.id, t.amount, lot_amount)
            .select_from(with_balance.outerjoin(credit_lots, l.entry_id == t.id))
            .where(t.amount > 0, *counted)
            .group_by(t.user_id, t.id, t.amount)
            .having(sa.or_(sa.func.count(l.id) != 1, lot_amount != t.amount))
            .order_by(t.user_id, t.id)
            .limit(limit)
        )
        held = sa.func.coalesce(sa.func.sum(h.amount), 0)
        holds = (
            sa.select(r.user_id, r.id, r.amount, held)
            .select_from(reservations.outerjoin(hold_allocations, h.reservation_id == r.id))
            .where(r.status == ReservationStatus.PENDING.value)
            .group_by(r.user_id, r.id, r.amount)
            .having(held != r.amount)
            .order_by(r.user_id, r.id)
            .limit(limit)
        )
        found: list[LotDrift] = []
        for query, subject, check in (
            (debits, "entry", "lot allocations"),
            (credits, "entry", "credit lot"),
            (holds, "reservation", "lots held"),
        ):
            for user_id, item, expected, got in await self._c.execute(query):
                found.append(LotDrift(user_id, f"{subject} {item}", check, expected, int(got)))
        return found[:limit]
