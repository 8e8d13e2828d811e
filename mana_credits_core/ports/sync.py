"""The port of Cloud Sync subscriptions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from ..ledger import Debit
from ..sync import BatchOutcome, SyncSubscription


class SyncRepository(Protocol):
    async def get(self, user_id: str, *, lock: bool = False) -> SyncSubscription | None:
        """The user's subscription; `lock` holds its row until the unit of work ends."""
        ...

    async def ensure(self, user_id: str, now: datetime) -> None:
        """Create an inactive monthly row if absent (safe under concurrent calls)."""
        ...

    async def save(self, sub: SyncSubscription) -> None: ...

    async def due(self, now: datetime, limit: int) -> list[SyncSubscription]:
        """Active, non-gifted subscriptions whose charge is due, oldest first, locked;
        rows locked by another run are skipped (so several runs share the work)."""
        ...

    async def count_due(self, now: datetime) -> int: ...

    async def charge_due_batch(
        self, now: datetime, limit: int, charge: Callable[[SyncSubscription], Debit]
    ) -> BatchOutcome | None:
        """Optionally, one batch of the billing run in a few statements.

        It must do exactly what `SyncService` does row by row: debit each due
        subscription's `charge(sub)` (lots burned as `LotBook.debit` decides), then
        save it `advance`d (applied or replayed) or `pause`d; it is certified by the
        same contract suite. None: the store has no fast path.
        """
        ...
