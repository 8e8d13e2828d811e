"""Use cases for credit lots: the expiry sweep, and reading a user's lots."""

from __future__ import annotations

import logging

from .. import validation as v
from ..lot_book import LotsOutOfStep
from ..lots import Allocation, Lot, expiry_notices
from ..ports import Clock, Notifier, Store

log = logging.getLogger("mana_credits.lots")


class LotsService:
    """Credit lots (docs/credits.md): every credit is a lot, debits burn them."""

    def __init__(self, store: Store, clock: Clock, notifier: Notifier | None = None) -> None:
        self._store = store
        self._clock = clock
        self._notifier = notifier

    async def expire(self, batch_size: int = 500) -> int:
        """Expire the free credits of every lot past its expiry; returns how many lots
        expired now.

        Each lot gives one `expire` entry of minus its free credits (key
        `expiry_key(lot id)`), its user's balance goes down by as much, and held credits
        stay until their reservation resolves. One transaction per user, each under
        the user's balance lock, so the sweep is safe to run in several processes at
        once and beside debits (which expire such lots themselves first): every lot
        expires exactly once. A user whose lots cannot be expired (stored data out of
        step, which reconcile reports) is logged and skipped.
        """
        expired = 0
        while True:
            async with self._store.reader() as reader:
                users = await reader.lots.due(self._clock.now(), batch_size)
            progress = 0
            for user_id in users:
                try:
                    async with self._store.unit_of_work() as uow:
                        entries = await uow.lots.expire(user_id, self._clock.now())
                        await uow.commit()
                except LotsOutOfStep:
                    log.exception("expiring the lots of %s failed; skipped", user_id)
                    continue
                progress += len(entries)
            expired += progress
            if len(users) < batch_size or progress == 0:
                return expired

    async def send_expiry_notices(self, batch_size: int = 500) -> int:
        """Tell each user, once, of their credits expiring within `lots.EXPIRY_NOTICE`
        (seven days); returns how many notices were sent.

        Per user: the lots due are claimed first (their `notified_at` set by one
        conditional write, committed), then announced with one notice per day of
        expiry (`lots.expiry_notices`). Two sweeps at once never claim the same lot,
        so each lot is announced once. A notice the notification service does not
        take (down, refusing) has its lots' claim released, so the next sweep tries
        again; a process that dies between the claim and the send loses that notice.
        Without a notifier nothing is claimed.
        """
        if self._notifier is None:
            return 0
        sent = 0
        while True:
            async with self._store.reader() as reader:
                users = await reader.lots.notice_due(self._clock.now(), batch_size)
            failed = 0
            for user_id in users:
                done, lost = await self._announce(user_id, self._notifier)
                sent += done
                failed += lost
            # Users whose notices failed stay due: stop rather than loop on them.
            if len(users) < batch_size or failed:
                return sent

    async def _announce(self, user_id: str, notifier: Notifier) -> tuple[int, int]:
        """Claim and announce one user's lots due; (notices sent, notices failed)."""
        now = self._clock.now()
        async with self._store.unit_of_work() as uow:
            claimed = await uow.lots.claim_notices(user_id, now)
            await uow.commit()
        sent = failed = 0
        for notice in expiry_notices(claimed):
            try:
                await notifier.credits_expiring(
                    user_id, credits=notice.credits, expires_at=notice.expires_at
                )
                sent += 1
            except Exception:
                failed += 1
                log.warning(
                    "the expiry notice to %s failed; the next sweep retries it",
                    user_id,
                    exc_info=True,
                )
                async with self._store.unit_of_work() as uow:
                    await uow.lots.release_notices(notice.lot_ids, now)
                    await uow.commit()
        return sent, failed

    async def of_user(self, user_id: str) -> list[Lot]:
        """Every lot of the user, spent and expired ones included, oldest first.
        Raises `InvalidInput` for a malformed user id."""
        user_id = v.identifier(user_id, "userId")
        async with self._store.reader() as reader:
            return await reader.lots.of_user(user_id)

    async def allocations(self, entry_id: str) -> list[Allocation]:
        """Which lots paid a debit entry, and how much each (by lot id)."""
        entry_id = v.identifier(entry_id, "entryId", 36)
        async with self._store.reader() as reader:
            return await reader.lots.allocations(entry_id)
