"""The in-memory store's reads for operators naming records: ids by prefix, a gift's
redemptions. They answer exactly as the SQL ones (`sql/lookups.py`) do."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mana_credits_core.gifts import GiftRedemption

if TYPE_CHECKING:
    from .memory import MemoryState


def starting_with(ids: Iterable[str], prefix: str, limit: int) -> list[str]:
    """The `ids` beginning with `prefix` (case matters), sorted, at most `limit`."""
    return sorted(i for i in ids if i.startswith(prefix))[:limit]


class MemoryPackageLookups:
    """`ids_starting_with` of `MemoryPackages`."""

    _s: MemoryState

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        return starting_with(self._s.packages, prefix, limit)


class MemoryPurchaseLookups:
    """`ids_starting_with` of `MemoryPurchases`."""

    _s: MemoryState

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        return starting_with(self._s.purchases, prefix, limit)


class MemoryGiftLookups:
    """`ids_starting_with` and `redemptions` of `MemoryGifts`."""

    _s: MemoryState

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        return starting_with(self._s.gifts, prefix, limit)

    async def redemptions(self, gift_id: str) -> list[GiftRedemption]:
        found = [r for r in self._s.redemptions.values() if r.gift_code_id == gift_id]
        return sorted(found, key=lambda r: (r.created_at, r.id))
