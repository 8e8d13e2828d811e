"""Use cases for credit lots: the expiry sweep, and reading a user's lots."""

from __future__ import annotations

import logging
from datetime import timedelta

from .. import validation as v
from ..errors import InvalidInput
from ..ledger import LedgerEntry
from ..lot_book import LotsOutOfStep
from ..lots import Allocation, Lot, burn_key, expiry_notices
from ..ports import Clock, Expiring, Notifier, Store

MAX_EXPIRING_DAYS = 3660
"""The longest look-ahead of `expiring` (about ten years)."""

log = logging.getLogger("mana_credits.lots")


class LotsService:
    """Credit lots (docs/credits.md): every credit is a lot, debits burn them."""

    def __init__(self, store: Store, clock: Clock, notifier: Notifier | None = None) -> None:
        self._store = store
        self._clock = clock
        self._notifier = notifier

    async def expire(self, batch_size: int = 200) -> int:
        """Expire the free credits of every lot past its expiry; returns how many lots
        expired now.

        Each lot gives one `expire` entry of minus its free credits (key
        `expiry_key(lot id)`), its user's balance goes down by as much, and held credits
        stay until their reservation resolves. The sweep looks at up to `batch_size`
        lots due at a time (soonest expiry first) and expires all their users in one
        transaction, under those users' balance locks taken in user id order (as every
        writer takes them), so it is safe to run in several processes at once and
        beside debits (which expire such lots themselves first): every lot expires
        exactly once. If one user's lots cannot be expired (stored data out of step,
        which reconcile reports), that batch is retried user by user: the user is
        logged and skipped for the rest of the sweep, the others expire.
        """
        expired = 0
        skipped: set[str] = set()
        while True:
            async with self._store.reader() as reader:
                due = await reader.lots.due(self._clock.now(), batch_size)
            users = [user for user in due if user not in skipped]
            progress = await self._expire_users(users, skipped) if users else 0
            expired += progress
            # Nothing expired: nothing is due but skipped users (or a concurrent sweep
            # took them all). Stop rather than loop on them.
            if progress == 0:
                return expired

    async def _expire_users(self, users: list[str], skipped: set[str]) -> int:
        """Expire the due lots of `users` in one transaction or, if one of them is out
        of step, in one transaction each, adding those out of step to `skipped`;
        returns how many lots expired."""
        try:
            async with self._store.unit_of_work() as uow:
                entries = await uow.lots.expire(users, self._clock.now())
                await uow.commit()
            return len(entries)
        except LotsOutOfStep:
            if len(users) == 1:
                log.exception("expiring the lots of %s failed; skipped", users[0])
                skipped.add(users[0])
                return 0
        return sum([await self._expire_users([user], skipped) for user in users])

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

    async def open_lots(self, user_id: str) -> list[Lot]:
        """The user's lots with credits left (`remaining` > 0, held ones included), in
        burn order: the next debit takes from the first. Empty for a user never seen
        (nothing is created). Raises `InvalidInput` for a malformed user id."""
        lots = await self.of_user(user_id)
        return sorted((lot for lot in lots if lot.remaining > 0), key=burn_key)

    async def expiring(self, days: int = 30) -> Expiring:
        """Credits due to expire within `days` days from now (1..`MAX_EXPIRING_DAYS`),
        over all users: the free credits of lots whose expiry falls before then and
        has not been applied yet (lots already past their date that the sweep has not
        reached included). Credits held by pending reservations are not counted: they
        expire only if their reservation is refunded. Raises `InvalidInput` (field
        `days`)."""
        if isinstance(days, bool) or not 1 <= days <= MAX_EXPIRING_DAYS:
            raise InvalidInput("days", f"days must be 1..{MAX_EXPIRING_DAYS}")
        until = self._clock.now() + timedelta(days=days)
        async with self._store.reader() as reader:
            return await reader.lots.expiring(until)

    async def allocations(self, entry_id: str) -> list[Allocation]:
        """Which lots paid a debit entry, and how much each (by lot id)."""
        entry_id = v.identifier(entry_id, "entryId", 36)
        async with self._store.reader() as reader:
            return await reader.lots.allocations(entry_id)


async def lot_created_by(store: Store, entry: LedgerEntry) -> Lot | None:
    """The lot that the credit `entry` created (None for an entry without one, such as
    an imported entry whose credits are in the user's opening lot)."""
    async with store.reader() as reader:
        found = await reader.lots.of_user(entry.user_id)
    return next((lot for lot in found if lot.entry_id == entry.id), None)
