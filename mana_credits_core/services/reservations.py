"""Use cases for two-phase debits: reserve, then commit or refund, exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NoReturn

from .. import pricing as p
from .. import validation as v
from ..errors import (
    InsufficientCredits,
    InvalidInput,
    ReservationNotFound,
    ReservationNotPending,
)
from ..ledger import LedgerEntry
from ..ports import Clock, IdGenerator, Store, UnitOfWork
from ..pricing import Priced
from ..reservations import (
    CommitHold,
    Held,
    Hold,
    ReleaseHold,
    Reservation,
    ReservationStatus,
    past_ttl,
)
from .notices import LowBalanceAlerts
from .prices import price_now

DEFAULT_TTL = timedelta(minutes=15)


class ReservationsService:
    """Holds credits for work whose cost is known up front but not yet delivered.

    Held credits leave the spendable balance at once. A reservation is resolved once:
    committed (a usage entry), refunded, or expired; a second attempt raises
    `ReservationNotPending` and changes nothing.

    The time-to-live decides expiry, not when the sweep runs: a commit or refund of a
    reservation held longer than `ttl` releases it as `expired` (credits back, once,
    whoever of them and the sweep gets there first) and raises `ReservationNotPending`
    with status `expired`, as it would after the sweep.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        ttl: timedelta = DEFAULT_TTL,
        alerts: LowBalanceAlerts | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self.ttl = ttl
        self._alerts = alerts

    async def reserve(
        self, user_id: str, amount: int, reason: str, *, app_id: str = "system"
    ) -> Held:
        """Hold `amount` credits out of the spendable balance in a pending reservation.

        Raises `InsufficientCredits` (nothing held) when the balance is short. The hold
        is what lowers the spendable balance, so a hold that takes it below the
        low-balance threshold notifies the user once committed (the later commit
        changes the spendable balance no more and notifies nothing).
        """
        hold = Hold(
            reservation_id=self._ids.new_id(),
            user_id=v.identifier(user_id, "userId"),
            amount=v.amount(amount),
            reason=v.text(reason, "reason", v.MAX_REASON),
            app_id=v.identifier(app_id, "appId", v.MAX_APP_ID),
            now=self._clock.now(),
        )
        return await self._hold(hold)

    async def reserve_operation(
        self,
        user_id: str,
        operation: str,
        quantity: int | None = None,
        *,
        reason: str | None = None,
        app_id: str | None = None,
    ) -> Held:
        """Hold what `quantity` units (None: 1) of a price-list `operation` may cost:
        the whole credits `Priced.most_credits` of its cost at today's price, which no
        accrual can exceed. The commit then charges what the cost makes due with what
        the user accrued by then, at the price held (or less: `commit`).

        The reason defaults to the operation's name, the app is the operation's.
        Raises `InvalidInput` for an unknown or retired operation, a bad quantity, an
        `app_id` other than the operation's; `InsufficientCredits` as `reserve`.
        """
        user = v.identifier(user_id, "userId")
        text = v.optional_text(reason, "reason", v.MAX_REASON)
        price, priced = await price_now(self._store, operation, quantity, app_id)
        hold = Hold(
            reservation_id=self._ids.new_id(),
            user_id=user,
            amount=priced.most_credits,
            reason=text or price.name,
            app_id=price.app_id,
            now=self._clock.now(),
            priced=priced,
        )
        return await self._hold(hold)

    async def _hold(self, hold: Hold) -> Held:
        async with self._store.unit_of_work() as uow:
            held = await uow.reservations.hold(hold)
            if held is None:
                found = await uow.balances.get(hold.user_id)
                raise InsufficientCredits(hold.amount, found.balance if found else 0)
            await uow.commit()
        if self._alerts is not None:
            await self._alerts.debited(hold.user_id, held.balance + hold.amount, held.balance)
        return held

    async def commit(
        self,
        reservation_id: str,
        description: str | None = None,
        *,
        amount: int | None = None,
        quantity: int | None = None,
    ) -> LedgerEntry:
        """Write what the reservation is charged to the ledger as usage and give the
        rest of its held credits back, in one step; returns the entry.

        Charged: `amount` credits (1..the credits held) if given; else, for a
        reservation made for an operation, what its price held at reserve time makes
        `quantity` units (None: the units reserved; at most those) cost with what the
        user accrued (`pricing.accrue`; the entry may then charge 0); else all that
        is held. This is TigerBeetle's post-pending transfer with a smaller amount.

        Raises `InvalidInput` (nothing changed) for an amount above what is held, a
        quantity above what was reserved or for a reservation made with an amount,
        both at once; `ReservationNotFound`; `ReservationNotPending` for a reservation
        already resolved or past its time-to-live (which this call then releases).
        """
        reservation_id = v.identifier(reservation_id, "reservationId")
        text = v.optional_text(description, "description", v.MAX_DESCRIPTION)
        if amount is not None and quantity is not None:
            raise InvalidInput("amount", "give amount or quantity, not both")
        charge = None if amount is None else v.amount(amount)
        units = None if quantity is None else p.quantity(quantity)
        async with self._store.unit_of_work() as uow:
            reservation = await _pending(uow, reservation_id, "commit")
            priced = _charged(reservation, charge, units)
            now = self._clock.now()
            if past_ttl(reservation, now, self.ttl):
                await _expire(uow, reservation_id, now, "commit")
            done = await uow.reservations.commit(
                CommitHold(
                    reservation_id=reservation_id,
                    entry_id=self._ids.new_id(),
                    description=text or reservation.reason,
                    now=now,
                    amount=charge,
                    priced=priced,
                )
            )
            if done is None:  # resolved by someone else since we looked
                await _raise_not_pending(uow, reservation_id, "commit")
            await uow.commit()
        return done[1]

    async def refund(self, reservation_id: str) -> int:
        """Return the held credits; returns the spendable balance after it.

        Past the time-to-live the reservation is expired, as if the sweep had run: the
        credits come back all the same (status `expired`) and `ReservationNotPending`
        is raised, so the answer does not depend on the sweep's timing.
        """
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
        # The store's `expired(cutoff)` is `past_ttl` for the whole table.
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
            reservation = await _pending(uow, reservation_id, action)
            now = self._clock.now()
            if past_ttl(reservation, now, self.ttl):
                await _expire(uow, reservation_id, now, action)
            done = await uow.reservations.release(ReleaseHold(reservation_id, status, now))
            if done is None:
                await _raise_not_pending(uow, reservation_id, action)
            await uow.commit()
        return done[1].balance


def _charged(reservation: Reservation, amount: int | None, quantity: int | None) -> Priced | None:
    """The pricing of a commit (None: it charges `amount`, or all that is held);
    raises `InvalidInput` for a charge the reservation cannot take."""
    if amount is not None:
        if amount > reservation.amount:
            raise InvalidInput(
                "amount",
                f"amount {amount} is more than the {p.counted(reservation.amount, 'credit')}"
                " held; "
                "commit at most what is held",
            )
        return None
    if reservation.priced is None:
        if quantity is not None:
            raise InvalidInput(
                "quantity", "quantity applies to a reservation made for an operation only"
            )
        return None
    if quantity is None:
        return reservation.priced
    if quantity > reservation.priced.quantity:
        raise InvalidInput(
            "quantity",
            f"quantity {quantity} is more than the {reservation.priced.quantity} reserved",
        )
    return reservation.priced.with_quantity(quantity)


async def _pending(uow: UnitOfWork, reservation_id: str, action: str) -> Reservation:
    found = await uow.reservations.get(reservation_id)
    if found is None:
        raise ReservationNotFound()
    if found.status != ReservationStatus.PENDING:
        raise ReservationNotPending(action, found.status)
    return found


async def _expire(uow: UnitOfWork, reservation_id: str, now: datetime, action: str) -> NoReturn:
    """Release a reservation found past its time-to-live, commit, and refuse `action`.

    The release is the sweep's conditional write: if the sweep (or another call) got
    there first, nothing is released twice and its outcome is reported instead.
    """
    released = await uow.reservations.release(
        ReleaseHold(reservation_id, ReservationStatus.EXPIRED, now)
    )
    if released is None:
        await _raise_not_pending(uow, reservation_id, action)
    await uow.commit()
    raise ReservationNotPending(action, ReservationStatus.EXPIRED)


async def _raise_not_pending(uow: UnitOfWork, reservation_id: str, action: str) -> NoReturn:
    await uow.rollback()
    found = await uow.reservations.get(reservation_id)
    raise ReservationNotPending(action, found.status if found else "unknown")
