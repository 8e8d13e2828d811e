"""Counting a user's ledger entries in the in-memory store."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .memory import MemoryState


class MemoryLedgerCounts:
    """The `count` part of `MemoryLedger`, kept apart from its reads and pages."""

    _s: MemoryState

    async def count(self, user_id: str) -> int:
        """How many entries the user has, of any type and status."""
        # .get: looking a user up must not add an empty list to the defaultdict.
        return len(self._s.entries_by_user.get(user_id, ()))
