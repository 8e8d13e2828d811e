"""Use cases for credit lots: the expiry sweep, and reading a user's lots."""

from __future__ import annotations

import logging

from .. import validation as v
from ..lot_book import LotsOutOfStep
from ..lots import Allocation, Lot
from ..ports import Clock, Store

log = logging.getLogger("mana_credits.lots")


class LotsService:
    """Credit lots (docs/credits.md): every credit is a lot, debits burn them."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

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
