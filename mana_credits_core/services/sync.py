"""Use cases for Cloud Sync: activate, change, deactivate, bill, pause, admin gifts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from .. import validation as v
from ..errors import (
    InsufficientCredits,
    InvalidInput,
    StoreUnavailable,
    SubscriptionNotFound,
    SyncStateError,
)
from ..events import EventKind, Events
from ..ledger import Applied, Debit, Replayed
from ..ports import Clock, IdGenerator, Notifier, Store, UnitOfWork
from ..pricing import MILLI, SYNC_APP, SYNC_OPERATION
from ..sync import (
    DEFAULT_MONTHLY,
    BillingInterval,
    BillingReport,
    SyncStatus,
    SyncSubscription,
    add_months,
    advance,
    pause,
    period_key,
    period_paid,
)

log = logging.getLogger("mana_credits.sync")

BATCHES_IN_FLIGHT = 2
"""Batches of one billing run in flight at once on a store that writes batches in
parallel (PostgreSQL; see `SyncService.charge_due`)."""


@dataclass(frozen=True, slots=True)
class Activated:
    subscription: SyncSubscription
    amount_charged: int


class SyncService:
    """Cloud Sync billed in credits.

    Activation charges the first period in the same transaction that activates the
    subscription (its row locked, so concurrent activations charge once). The billing
    run charges each due period once: the charge carries the period's ledger key, and
    the charge and the move to the next period commit together.

    A period costs its months at the price list's `cloud_sync` price per month (whole
    credits; `DEFAULT_MONTHLY` where the list has none), read when the period is
    charged: a price change applies from the next charge on.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        notifier: Notifier,
        events: Events | None = None,
        *,
        batches_in_flight: int = 1,
    ) -> None:
        """`batches_in_flight`: billing batches run at once by `charge_due` (more than
        one pays only where the store writes batches in parallel: PostgreSQL)."""
        self._batches_in_flight = batches_in_flight
        self._store = store
        self._clock = clock
        self._ids = ids
        self._notifier = notifier
        self._events = events or Events()

    async def status(self, user_id: str) -> SyncStatus:
        async with self._store.unit_of_work() as uow:
            return SyncStatus.of(await uow.sync.get(v.identifier(user_id, "userId")))

    async def find(self, user_id: str) -> SyncStatus | None:
        """The user's subscription status, or None if they never had a subscription
        (`status` answers "inactive" for those); creates nothing."""
        async with self._store.reader() as reader:
            found = await reader.sync.get(v.identifier(user_id, "userId"))
        return None if found is None else SyncStatus.of(found)

    async def period_price(self, interval: BillingInterval) -> int:
        """Credits one period of `interval` costs now (the price list's `cloud_sync`
        per month, times the period's months)."""
        async with self._store.reader() as reader:
            return interval.price_at(await _monthly(reader))

    async def activate(self, user_id: str, interval: str | None = None) -> Activated:
        user_id = v.identifier(user_id, "userId")
        asked = None if interval is None else _interval(interval)
        chosen = asked or BillingInterval.MONTHLY  # the contract's default
        now = self._clock.now()
        async with self._store.unit_of_work() as uow:
            monthly = await _monthly(uow)
            # Created in the same transaction as the charge: a refused activation leaves
            # no subscription behind.
            sub = await _ensured(uow, user_id, now)
            if sub.is_gifted:
                raise SyncStateError("Sync is already gifted — no activation needed")
            if sub.active:
                raise SyncStateError("Sync is already active")
            paid_until = add_months(sub.anchor_at, sub.months_paid)
            if now < paid_until:
                # Deactivated inside a period already paid for: resume it, charge
                # nothing now; an interval asked for applies from the next charge, and
                # none asked for keeps the plan as it was (not the default, monthly).
                if asked is None:
                    upcoming = sub.next_interval
                else:
                    upcoming = None if asked == sub.interval else asked
                resumed = replace(
                    sub,
                    active=True,
                    next_interval=upcoming,
                    next_charge_at=paid_until,
                    paused_at=None,
                    updated_at=now,
                )
                await uow.sync.save(resumed)
                await uow.commit()
                self._events.emit(EventKind.SYNC_ACTIVATED)
                return Activated(resumed, 0)
            price = chosen.price_at(monthly)
            outcome = await uow.balances.debit(self._charge(user_id, chosen, now, monthly))
            if isinstance(outcome, Replayed):
                raise SyncStateError("Sync is already active")
            if not isinstance(outcome, Applied):
                available = getattr(outcome, "available", 0)
                raise InsufficientCredits(price, available)
            # A first activation, or one after a pause or after the paid period ended,
            # starts a new calendar anchored on today.
            active = replace(
                sub,
                active=True,
                interval=chosen,
                next_interval=None,
                anchor_at=now,
                months_paid=chosen.months,
                next_charge_at=add_months(now, chosen.months),
                paused_at=None,
                updated_at=now,
            )
            await uow.sync.save(active)
            await uow.commit()
        self._events.emit(EventKind.SYNC_ACTIVATED)
        self._events.emit(EventKind.SYNC_CHARGED, credits=price)
        return Activated(active, price)

    async def deactivate(self, user_id: str) -> None:
        """Stop future charges; the paid period is not refunded and data is kept."""
        async with self._store.unit_of_work() as uow:
            sub = await self._paid(uow, user_id, "Sync is gifted — contact support to revoke")
            await uow.sync.save(
                replace(sub, active=False, next_charge_at=None, updated_at=self._clock.now())
            )
            await uow.commit()

    async def change_interval(self, user_id: str, interval: str) -> SyncSubscription:
        """Switch intervals from the next charge on; nothing is charged now.

        Returns the saved subscription: its `billed_interval` is `interval`, whose
        price per period (`period_price`, at today's price) the charge at
        `next_charge_at` will take. Raises `InvalidInput` for an unknown
        interval and `SyncStateError` when Sync is not active or is gifted.
        """
        chosen = _interval(interval)
        async with self._store.unit_of_work() as uow:
            sub = await self._paid(uow, user_id, "Sync is gifted — there is no billing to change")
            changed = replace(
                sub,
                next_interval=None if chosen == sub.interval else chosen,
                updated_at=self._clock.now(),
            )
            await uow.sync.save(changed)
            await uow.commit()
        return changed

    async def _paid(self, uow: UnitOfWork, user_id: str, gifted: str) -> SyncSubscription:
        sub = await uow.sync.get(v.identifier(user_id, "userId"), lock=True)
        if sub is not None and sub.is_gifted:
            raise SyncStateError(gifted)
        if sub is None or not sub.active:
            raise SyncStateError("Sync is not active")
        return sub

    async def gift(self, user_id: str, admin_id: str) -> SyncSubscription:
        """Grant Cloud Sync without charge; idempotent."""
        user_id = v.identifier(user_id, "userId")
        now = self._clock.now()
        async with self._store.unit_of_work() as uow:
            await uow.sync.ensure(user_id, now)
            await uow.commit()
        async with self._store.unit_of_work() as uow:
            sub = await _locked(uow, user_id)
            if sub.is_gifted and sub.active:
                return sub
            gifted = replace(
                sub,
                active=True,
                is_gifted=True,
                gifted_by=v.identifier(admin_id, "adminId"),
                gifted_at=now,
                next_charge_at=None,
                next_interval=None,
                paused_at=None,
                updated_at=now,
            )
            await uow.sync.save(gifted)
            await uow.commit()
        self._events.emit(EventKind.SYNC_GIFTED)
        return gifted

    async def revoke_gift(self, user_id: str) -> SyncSubscription:
        async with self._store.unit_of_work() as uow:
            sub = await uow.sync.get(v.identifier(user_id, "userId"), lock=True)
            if sub is None:
                raise SubscriptionNotFound()
            if not sub.is_gifted:
                raise SyncStateError("Sync is not gifted — nothing to revoke")
            now = self._clock.now()
            revoked = replace(
                sub, is_gifted=False, active=False, next_charge_at=None, updated_at=now
            )
            await uow.sync.save(revoked)
            await uow.commit()
        return revoked

    # The billing run.

    async def charge_due(
        self,
        *,
        batch_size: int = 500,
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> BillingReport:
        """Charge every due period once; pause (and notify) where credits fall short.

        Each batch is one transaction: its rows are locked (others are skipped by a
        concurrent run), each charge carries its period's unique ledger key, and the
        charges and the moves to the next period commit together, so a run killed
        half-way leaves every subscription either charged and advanced, or untouched.
        Missed periods after downtime are charged one by one, each once.

        `batches_in_flight` batches (see the constructor) run at once, each in its own
        transaction on rows the others skip: one is decided while the database writes
        another. After a failed batch the run stops once the batches in flight end;
        `errors` counts the failed batches. `progress` is called with each batch's
        number of subscriptions.
        """
        now = self._clock.now()
        if dry_run:
            async with self._store.unit_of_work() as uow:
                due = await uow.sync.count_due(now)
            return BillingReport(total=due)
        async with self._store.reader() as reader:
            monthly = await _monthly(reader)  # one price for the whole run
        report = BillingReport()
        failed = False

        async def run_batches() -> None:
            nonlocal report, failed
            while not failed:
                try:
                    processed, charged, paused = await self._charge_batch(now, batch_size, monthly)
                except Exception:
                    # The batch rolled back whole: its subscriptions stay due for the
                    # next run, none is charged twice. Stop rather than spin on a fault.
                    log.exception("billing batch failed; its subscriptions stay due")
                    failed = True
                    report = replace(report, errors=report.errors + 1, total=report.total + 1)
                    return
                for _ in range(charged):
                    self._events.emit(EventKind.SYNC_CHARGED)
                report = BillingReport(
                    report.charged + charged,
                    report.paused + len(paused),
                    report.errors,
                    report.total + charged + len(paused),
                )
                for user_id, interval in paused:
                    self._events.emit(EventKind.SYNC_PAUSED)
                    await self._notify(user_id, interval, monthly)
                if progress is not None:
                    progress(processed)
                if not processed:  # a charged subscription may be due again (missed periods)
                    return

        await asyncio.gather(*(run_batches() for _ in range(self._batches_in_flight)))
        return report

    async def _charge_batch(
        self, now: datetime, batch_size: int, monthly: int
    ) -> tuple[int, int, list[tuple[str, BillingInterval]]]:
        """One batch in one transaction: (processed, charged, paused users)."""

        def due_charge(sub: SyncSubscription) -> Debit:
            return self._due_charge(sub, monthly)

        async with self._store.unit_of_work() as uow:
            fast = await uow.sync.charge_due_batch(now, batch_size, due_charge)
            if fast is not None:
                await uow.commit()
                return fast.processed, fast.charged, fast.paused
            charged, paused = 0, []
            batch = await uow.sync.due(now, batch_size)
            for sub in batch:
                if await self._bill(uow, sub, now, monthly):
                    charged += 1
                else:
                    paused.append((sub.user_id, sub.billed_interval))
            await uow.commit()
        return len(batch), charged, paused

    async def _bill(
        self, uow: UnitOfWork, sub: SyncSubscription, now: datetime, monthly: int
    ) -> bool:
        outcome = await uow.balances.debit(self._due_charge(sub, monthly))
        if period_paid(outcome):
            await uow.sync.save(advance(sub, now))
            return True
        await uow.sync.save(pause(sub, now))
        return False

    def _due_charge(self, sub: SyncSubscription, monthly: int) -> Debit:
        """The charge of `sub`'s due period at `monthly` credits a month."""
        assert sub.next_charge_at is not None
        return self._charge(sub.user_id, sub.billed_interval, sub.next_charge_at, monthly)

    def _charge(
        self, user_id: str, interval: BillingInterval, period_start: datetime, monthly: int
    ) -> Debit:
        return Debit(
            entry_id=self._ids.new_id(),
            user_id=user_id,
            amount=interval.price_at(monthly),
            app_id=SYNC_APP,
            description=f"Cloud Sync ({interval})",
            metadata={"interval": interval.value, "periodStart": period_start.isoformat()},
            idempotency_key=period_key(user_id, period_start),
            now=self._clock.now(),
        )

    async def _notify(self, user_id: str, interval: BillingInterval, monthly: int) -> None:
        for attempt in (1, 2):
            try:
                await self._notifier.sync_paused(
                    user_id, interval=interval.value, required=interval.price_at(monthly)
                )
                return
            except Exception:
                # The pause stands whatever happens here; the user sees it in the app.
                log.warning(
                    "notifying %s of the pause failed (attempt %d)",
                    user_id,
                    attempt,
                    exc_info=True,
                )


async def _monthly(uow: UnitOfWork) -> int:
    """Credits a month of Cloud Sync costs: the price list's `cloud_sync` (whole
    credits, see `PricesService`), else `DEFAULT_MONTHLY`."""
    found = await uow.prices.get(SYNC_OPERATION)
    if found is None or not found.active or found.price_milli % MILLI:
        return DEFAULT_MONTHLY
    return found.price_milli // MILLI


async def _locked(uow: UnitOfWork, user_id: str) -> SyncSubscription:
    """The user's subscription, locked; one made just before may be gone if the account
    was deleted meanwhile: `StoreUnavailable` then (nothing done; a retry starts anew)."""
    sub = await uow.sync.get(user_id, lock=True)
    if sub is None:
        raise StoreUnavailable()
    return sub


async def _ensured(uow: UnitOfWork, user_id: str, now: datetime) -> SyncSubscription:
    """The user's subscription, made if missing, locked. An account deletion committed
    between the two steps takes the row away (its id pseudonymized): it is made again,
    as for a user never seen, once; `StoreUnavailable` if even that is taken."""
    for _ in range(2):
        await uow.sync.ensure(user_id, now)
        sub = await uow.sync.get(user_id, lock=True)
        if sub is not None:
            return sub
    raise StoreUnavailable()


def _interval(value: object) -> BillingInterval:
    if isinstance(value, str) and value in BillingInterval.__members__.values():
        return BillingInterval(value)
    raise InvalidInput("interval", "interval must be monthly, quarterly or yearly")
