"""The port of the price list (`mana_credits_core.pricing`)."""

from __future__ import annotations

import builtins
from typing import Protocol

from ..pricing import Price, PriceChange


class PriceRepository(Protocol):
    async def list(self, *, include_retired: bool = False) -> list[Price]:
        """The price list by app, then operation; retired prices only if asked."""
        ...

    async def get(self, operation: str) -> Price | None: ...

    async def lock(self, operation: str) -> Price | None:
        """The price of `operation`, locked until the unit of work ends (a change
        reads, decides and writes under it); None if the operation is unknown."""
        ...

    async def put(self, price: Price, change: PriceChange) -> None:
        """Write `price` (a new operation, or a new state of a locked one) and record
        `change` with it. A new operation whose id another unit of work added first
        raises `Conflict`."""
        ...

    async def changes(
        self, operation: str | None = None, limit: int = 100
    ) -> builtins.list[PriceChange]:
        """The changes to the price list (or to one operation), newest first."""
        ...
