"""The in-memory store's Cloud Sync subscriptions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from mana_credits_core.ledger import Debit
from mana_credits_core.sync import BillingInterval, SyncSubscription

from .memory_undo import Undo, undoable_set

if TYPE_CHECKING:
    from .memory import MemoryState


class MemorySync:
    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    async def get(self, user_id: str, *, lock: bool = False) -> SyncSubscription | None:
        return self._s.sync.get(user_id)  # the store's lock already serialises

    async def ensure(self, user_id: str, now: datetime) -> None:
        if user_id not in self._s.sync:
            fresh = SyncSubscription(
                user_id=user_id,
                active=False,
                interval=BillingInterval.MONTHLY,
                next_interval=None,
                anchor_at=now,
                months_paid=0,
                next_charge_at=None,
                paused_at=None,
                is_gifted=False,
                gifted_by=None,
                gifted_at=None,
                created_at=now,
                updated_at=now,
            )
            undoable_set(self._s.sync, user_id, fresh, self._undo)

    async def save(self, sub: SyncSubscription) -> None:
        if sub.user_id in self._s.sync:
            undoable_set(self._s.sync, sub.user_id, sub, self._undo)

    def _due(self, now: datetime) -> list[SyncSubscription]:
        due = [
            sub
            for sub in self._s.sync.values()
            if sub.active
            and not sub.is_gifted
            and sub.next_charge_at is not None
            and sub.next_charge_at <= now
        ]
        return sorted(due, key=lambda sub: (sub.next_charge_at or now, sub.user_id))

    async def due(self, now: datetime, limit: int) -> list[SyncSubscription]:
        return self._due(now)[:limit]

    async def count_due(self, now: datetime) -> int:
        return len(self._due(now))

    async def charge_due_batch(
        self, now: datetime, limit: int, charge: Callable[[SyncSubscription], Debit]
    ) -> None:
        return None  # row by row through the core is fast enough in memory
