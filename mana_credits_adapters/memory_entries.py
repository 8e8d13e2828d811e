"""The in-memory store's ledger entries: by id or key, history pages, totals."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from mana_credits_core.ledger import LedgerEntry, TransactionStatus, totals_of
from mana_credits_core.ports import LedgerTotals

from .entry_json import entries_json
from .memory_counts import MemoryLedgerCounts

if TYPE_CHECKING:
    from .memory import MemoryState


class MemoryLedger(MemoryLedgerCounts):
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    async def get(self, entry_id: str) -> LedgerEntry | None:
        return self._s.entries.get(entry_id)

    async def by_idempotency_key(self, user_id: str, key: str) -> LedgerEntry | None:
        entry_id = self._s.idempotency.get((user_id, key))
        return None if entry_id is None else self._s.entries[entry_id]

    async def list(
        self,
        user_id: str,
        *,
        limit: int,
        offset: int = 0,
        before: tuple[datetime, str] | None = None,
    ) -> list[LedgerEntry]:
        entries = [self._s.entries[i] for i in self._s.entries_by_user.get(user_id, [])]
        entries.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        if before is not None:
            entries = [e for e in entries if (e.created_at, e.id) < before]
        return entries[offset : offset + limit]

    async def list_json(self, user_id: str, *, limit: int, offset: int = 0) -> bytes:
        return entries_json(await self.list(user_id, limit=limit, offset=offset))

    async def page_forward(
        self,
        *,
        limit: int,
        after: tuple[datetime, str] | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
    ) -> builtins.list[LedgerEntry]:
        found = [
            e
            for e in self._s.entries.values()
            if (user_id is None or e.user_id == user_id)
            and (since is None or e.created_at >= since)
            and (after is None or (e.created_at, e.id) > after)
        ]
        found.sort(key=lambda e: (e.created_at, e.id))
        return found[:limit]

    async def totals(self) -> Mapping[str, LedgerTotals]:
        sums: dict[str, LedgerTotals] = {}
        for e in self._s.entries.values():
            if e.status != TransactionStatus.COMPLETED:
                continue
            t = sums.get(e.user_id, LedgerTotals())
            net, earned, spent = totals_of(e)
            sums[e.user_id] = LedgerTotals(t.net + net, t.earned + earned, t.spent + spent)
        return sums
