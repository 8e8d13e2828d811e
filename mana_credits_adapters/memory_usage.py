"""The in-memory store's usage statistics: credits used per user, app and day."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from mana_credits_core.ledger import OperationUsage, UsageStat

if TYPE_CHECKING:
    from .memory import MemoryState


class MemoryUsage:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    async def for_user(self, user_id: str, since: datetime | None = None) -> list[UsageStat]:
        rows = [u for u in self._s.usage.values() if u.user_id == user_id]
        if since is not None:
            rows = [u for u in rows if u.day >= since.date()]
        return sorted(rows, key=lambda u: (u.day, u.app_id))

    async def by_app_and_day(self, since: date, app_id: str | None = None) -> list[UsageStat]:
        sums: dict[tuple[date, str], tuple[int, int]] = {}
        for u in self._s.usage.values():
            if u.day >= since and (app_id is None or u.app_id == app_id):
                credits, ops = sums.get((u.day, u.app_id), (0, 0))
                sums[(u.day, u.app_id)] = (credits + u.credits_used, ops + u.operations)
        return [
            UsageStat("*", app, day, credits, ops)
            for (day, app), (credits, ops) in sorted(sums.items())
        ]

    async def operations_for_user(self, user_id: str) -> list[OperationUsage]:
        rows = [u for u in self._s.operation_usage.values() if u.user_id == user_id]
        return sorted(rows, key=lambda u: (u.day, u.operation))

    async def by_operation(self, since: date, operation: str | None = None) -> list[OperationUsage]:
        sums: dict[tuple[date, str], tuple[int, int, int]] = {}
        for u in self._s.operation_usage.values():
            if u.day >= since and operation in (None, u.operation):
                calls, quantity, cost = sums.get((u.day, u.operation), (0, 0, 0))
                sums[(u.day, u.operation)] = (
                    calls + u.calls,
                    quantity + u.quantity,
                    cost + u.cost_milli,
                )
        return [
            OperationUsage("*", op, day, calls, quantity, cost)
            for (day, op), (calls, quantity, cost) in sorted(sums.items())
        ]
