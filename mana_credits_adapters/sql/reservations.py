"""SQL repository for reservations: conditional writes make each resolution happen once;
holds set credits of lots aside as the core's `LotBook` decides (`lots.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.ledger import Balance, LedgerEntry
from mana_credits_core.pricing import Priced
from mana_credits_core.reservations import (
    CommitHold,
    Held,
    Hold,
    ReleaseHold,
    Reservation,
    ReservationStatus,
)

from .lots import holds_of, locked_book, write
from .tables import reservations

PENDING = ReservationStatus.PENDING.value


def reservation_from(row: Any) -> Reservation:
    return Reservation(
        id=row.id,
        user_id=row.user_id,
        amount=row.amount,
        reason=row.reason,
        app_id=row.app_id,
        status=ReservationStatus(row.status),
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        transaction_id=row.transaction_id,
        priced=_priced_from(row),
        charged=row.charged,
    )


def _priced_from(row: Any) -> Priced | None:
    if row.operation is None:
        return None
    return Priced(row.operation, row.quantity, row.price_milli, row.unit_size, row.cost_milli)


def reservation_values(reservation: Reservation) -> dict[str, Any]:
    priced = reservation.priced
    return {
        "id": reservation.id,
        "user_id": reservation.user_id,
        "amount": reservation.amount,
        "reason": reservation.reason,
        "app_id": reservation.app_id,
        "status": reservation.status.value,
        "created_at": reservation.created_at,
        "resolved_at": reservation.resolved_at,
        "transaction_id": reservation.transaction_id,
        "operation": None if priced is None else priced.operation,
        "quantity": None if priced is None else priced.quantity,
        "price_milli": None if priced is None else priced.price_milli,
        "unit_size": None if priced is None else priced.unit_size,
        "cost_milli": None if priced is None else priced.cost_milli,
        "charged": reservation.charged,
    }


class SqlReservations:
    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def get(self, reservation_id: str) -> Reservation | None:
        row = (
            await self._c.execute(
                sa.select(reservations).where(reservations.c.id == reservation_id)
            )
        ).first()
        return None if row is None else reservation_from(row)

    async def hold(self, hold: Hold) -> Held | None:
        book = await locked_book(self._c, [hold.user_id])
        held = book.hold(hold)
        await write(self._c, book.writes)
        if held is not None:
            values = reservation_values(held.reservation)
            await self._c.execute(sa.insert(reservations).values(values))
        return held

    async def _resolve(
        self, reservation_id: str, status: ReservationStatus, now: datetime, entry_id: str | None
    ) -> Reservation | None:
        # The status guard in the WHERE clause is what makes commit, refund and the
        # expiry sweep mutually exclusive: exactly one of them matches the row.
        r = reservations.c
        row = (
            await self._c.execute(
                sa.update(reservations)
                .where(r.id == reservation_id, r.status == PENDING)
                .values(status=status.value, resolved_at=now, transaction_id=entry_id)
                .returning(reservations)
            )
        ).first()
        return None if row is None else reservation_from(row)

    async def commit(self, commit: CommitHold) -> tuple[Reservation, LedgerEntry] | None:
        done = await self._resolve(
            commit.reservation_id, ReservationStatus.COMMITTED, commit.now, commit.entry_id
        )
        if done is None:
            return None
        book = await locked_book(self._c, [done.user_id])
        entry = book.commit(done, commit, await holds_of(self._c, done.id))
        await write(self._c, book.writes)
        # What it charged is known once the book decided (a commit may charge less
        # than is held); the row is ours since `_resolve` moved it.
        charged = -entry.amount
        await self._c.execute(
            sa.update(reservations).where(reservations.c.id == done.id).values(charged=charged)
        )
        return replace(done, charged=charged), entry

    async def release(self, release: ReleaseHold) -> tuple[Reservation, Balance] | None:
        done = await self._resolve(release.reservation_id, release.status, release.now, None)
        if done is None:
            return None
        book = await locked_book(self._c, [done.user_id])
        after = book.release(done, release, await holds_of(self._c, done.id))
        await write(self._c, book.writes)
        return done, after

    async def expired(self, older_than: datetime, limit: int) -> list[str]:
        r = reservations.c
        query = (
            sa.select(r.id)
            .where(r.status == PENDING, r.created_at < older_than)
            .order_by(r.created_at)
            .limit(limit)
        )
        return list((await self._c.scalars(query)).all())

    async def held_by_user(self) -> Mapping[str, int]:
        r = reservations.c
        query = (
            sa.select(r.user_id, sa.func.sum(r.amount).label("held"))
            .where(r.status == PENDING)
            .group_by(r.user_id)
        )
        return {row.user_id: int(row.held) for row in await self._c.execute(query)}
