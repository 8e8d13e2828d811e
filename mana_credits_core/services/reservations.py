"""Use cases for two-phase debits: reserve, then commit or refund, exactly once."""

from __future__ import annotations

from datetime import timedelta

from .. import validation as v
from ..errors import InsufficientCredits, ReservationNotFound, ReservationNotPending
from ..ledger import LedgerEntry
from ..ports import Clock, IdGenerator, Store, UnitOfWork
from ..reservations import CommitHold, Held, Hold, ReleaseHold, Reservation, ReservationStatus

DEFAULT_TTL = timedelta(minutes=15)


class ReservationsService:
    """Holds credits for work whose cost is known up front but not yet delivered.

    Held credits leave the spendable balance at once. A reservation is resolved once:
    committed (a usage entry), refunded, or expired by the time-to-live sweep; a second
    attempt raises `ReservationNotPending` and changes nothing.
    """

    def __init__(
        self, store: Store, clock: Clock, ids: IdGenerator, ttl: timedelta = DEFAULT_TTL
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self.ttl = ttl

    async def reserve(
        self, user_id: str, amount: int, reason: str, *, app_id: str = "system"
    ) -> Held:
        hold = Hold(
            reservation_id=self._ids.new_id(),
            user_id=v.identifier(user_id, "userId"),
            amount=v.amount(amount),
            reason=v.text(reason, "reason", v.MAX_REASON),
            app_id=v.identifier(app_id, "appId", v.MAX_APP_ID),
            now=self._clock.now(),
        )
        async with self._store.unit_of_work() as uow:
            held = await uow.reservations.hold(hold)
            if held is None:
                found = await uow.balances.get(hold.user_id)
                raise InsufficientCredits(hold.amount, found.balance if found else 0)
            await uow.commit()
        return held

    async def commit(self, reservation_id: str, description: str | None = None) -> LedgerEntry:
        """Write the held credits to the ledger as usage; returns the entry."""
        reservation_id = v.identifier(reservation_id, "reservationId")
        text = v.optional_text(description, "description", v.MAX_DESCRIPTION)
        async with self._store.unit_of_work() as uow:
            reservation = await _pending(uow, reservation_id, "commit")
            done = await uow.reservations.commit(
                CommitHold(
                    reservation_id=reservation_id,
                    entry_id=self._ids.new_id(),
                    description=text or reservation.reason,
                    now=self._clock.now(),
                )
            )
            if done is None:  # resolved by someone else since we looked
                await _raise_not_pending(uow, reservation_id, "commit")
            assert done is not None
            await uow.commit()
        return done[1]

    async def refund(self, reservation_id: str) -> int:
        """Return the held credits; returns the spendable balance after it."""
        reservation_id = v.identifier(reservation_id, "reservationId")
        return await self._release(reservation_id, ReservationStatus.REFUNDED, "refund")

    async def get(self, reservation_id: str) -> Reservation:
        reservation_id = v.identifier(reservation_id, "reservationId")
        async with self._store.unit_of_work() as uow:
            found = await uow.reservations.get(reservation_id)
        if found is None:
            raise ReservationNotFound()
        return found

    async def release_expired(self, batch_size: int = 500) -> int:
        """Release every pending reservation older than the time-to-live; returns how many.

        Safe to run in several processes at once: each release is a conditional write,
        so a reservation committed or refunded meanwhile is simply skipped.
        """
        released = 0
        cutoff = self._clock.now() - self.ttl
        while True:
            async with self._store.unit_of_work() as uow:
                ids = await uow.reservations.expired(cutoff, batch_size)
            for reservation_id in ids:
                async with self._store.unit_of_work() as uow:
                    done = await uow.reservations.release(
                        ReleaseHold(reservation_id, ReservationStatus.EXPIRED, self._clock.now())
                    )
                    await uow.commit()
                released += done is not None
            if len(ids) < batch_size:
                return released

    async def _release(self, reservation_id: str, status: ReservationStatus, action: str) -> int:
        async with self._store.unit_of_work() as uow:
            await _pending(uow, reservation_id, action)
            done = await uow.reservations.release(
                ReleaseHold(reservation_id, status, self._clock.now())
            )
            if done is None:
                await _raise_not_pending(uow, reservation_id, action)
            assert done is not None
            await uow.commit()
        return done[1].balance


async def _pending(uow: UnitOfWork, reservation_id: str, action: str) -> Reservation:
    found = await uow.reservations.get(reservation_id)
    if found is None:
        raise ReservationNotFound()
    if found.status != ReservationStatus.PENDING:
        raise ReservationNotPending(action, found.status)
    return found


async def _raise_not_pending(uow: UnitOfWork, reservation_id: str, action: str) -> None:
    await uow.rollback()
    found = await uow.reservations.get(reservation_id)
    raise ReservationNotPending(action, found.status if found else "unknown")
