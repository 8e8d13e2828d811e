"""The in-memory store's price list and its changes."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from mana_credits_core.errors import Conflict
from mana_credits_core.pricing import Price, PriceChange

from .memory_undo import Undo, undoable_set

if TYPE_CHECKING:
    from .memory import MemoryState


class MemoryPrices:
    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    async def list(self, *, include_retired: bool = False) -> builtins.list[Price]:
        found = (p for p in self._s.prices.values() if include_retired or p.active)
        return sorted(found, key=lambda p: (p.app_id, p.operation))

    async def get(self, operation: str) -> Price | None:
        return self._s.prices.get(operation)

    async def lock(self, operation: str) -> Price | None:
        # Units of work run one at a time under the store's lock: reading is locking.
        return self._s.prices.get(operation)

    async def put(self, price: Price, change: PriceChange) -> None:
        old = self._s.prices.get(price.operation)
        if old is None and change.old_price_milli is not None:
            raise Conflict(f"operation {price.operation} changed meanwhile; try again")
        if old is not None and change.old_price_milli is None:
            raise Conflict(f"operation {price.operation} was added meanwhile; try again")
        undoable_set(self._s.prices, price.operation, price, self._undo)
        changes = self._s.price_changes
        changes.append(change)
        self._undo.append(lambda: changes.remove(change))

    async def changes(
        self, operation: str | None = None, limit: int = 100
    ) -> builtins.list[PriceChange]:
        found = [c for c in self._s.price_changes if operation in (None, c.operation)]
        found.reverse()
        return found[:limit]
