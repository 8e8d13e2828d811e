"""The in-memory store's reservations: each resolves once, from `pending`; holds set
credits of lots aside as the core's `LotBook` decides."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from mana_credits_core.ledger import Balance, LedgerEntry
from mana_credits_core.reservations import (
    CommitHold,
    Held,
    Hold,
    ReleaseHold,
    Reservation,
    ReservationStatus,
)

from .memory_lots import book_for, write
from .memory_undo import Undo, undoable_set

if TYPE_CHECKING:
    from .memory import MemoryState


class MemoryReservations:
    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    async def get(self, reservation_id: str) -> Reservation | None:
        return self._s.reservations.get(reservation_id)

    async def hold(self, hold: Hold) -> Held | None:
        book = book_for(self._s, [hold.user_id])
        held = book.hold(hold)
        write(self._s, book.writes, self._undo)
        if held is not None:
            reservation = held.reservation
            undoable_set(self._s.reservations, reservation.id, reservation, self._undo)
        return held

    def _resolve(
        self, reservation_id: str, status: ReservationStatus, now: datetime, entry_id: str | None
    ) -> Reservation | None:
        found = self._s.reservations.get(reservation_id)
        if found is None or found.status != ReservationStatus.PENDING:
            return None
        done = replace(found, status=status, resolved_at=now, transaction_id=entry_id)
        undoable_set(self._s.reservations, reservation_id, done, self._undo)
        return done

    async def commit(self, commit: CommitHold) -> tuple[Reservation, LedgerEntry] | None:
        done = self._resolve(
            commit.reservation_id, ReservationStatus.COMMITTED, commit.now, commit.entry_id
        )
        if done is None:
            return None
        book = book_for(self._s, [done.user_id])
        entry = book.commit(done, commit, self._s.holds.get(done.id, []))
        write(self._s, book.writes, self._undo)
        done = replace(done, charged=-entry.amount)
        undoable_set(self._s.reservations, done.id, done, self._undo)
        return done, entry

    async def release(self, release: ReleaseHold) -> tuple[Reservation, Balance] | None:
        done = self._resolve(release.reservation_id, release.status, release.now, None)
        if done is None:
            return None
        book = book_for(self._s, [done.user_id])
        after = book.release(done, release, self._s.holds.get(done.id, []))
        write(self._s, book.writes, self._undo)
        return done, after

    async def expired(self, older_than: datetime, limit: int) -> list[str]:
        pending = [
            r
            for r in self._s.reservations.values()
            if r.status == ReservationStatus.PENDING and r.created_at < older_than
        ]
        pending.sort(key=lambda r: r.created_at)
        return [r.id for r in pending[:limit]]

    async def held_by_user(self) -> Mapping[str, int]:
        held: dict[str, int] = defaultdict(int)
        for r in self._s.reservations.values():
            if r.status == ReservationStatus.PENDING:
                held[r.user_id] += r.amount
        return dict(held)
