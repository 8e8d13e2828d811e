"""The last reconcile result of this process, for the operator overview."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from ..ports import Clock
from .reconcile import ReconcileService


@dataclass(frozen=True, slots=True)
class ReconcileStatus:
    """One reconcile run as the overview shows it: `checked_at` when the run started
    (UTC; the data it read is from then on), `ok` no drift found, `drifts` how many
    broken invariants it found, `users_checked` how many balances it checked."""

    checked_at: datetime
    ok: bool
    drifts: int
    users_checked: int


class ReconcileWatch:
    """Runs the full reconcile on demand and remembers the last result and its time.

    The memory is per process: nothing is stored, so each server process has its own
    `last`, None until its first `check` (a restart forgets it). A server refreshes it
    from a background task, e.g. once at start and then every hour (reconcile reads
    every balance, lot and hold, so not more often than the store can afford); the
    CLI's `reconcile` command runs the same check on demand.
    """

    def __init__(self, reconcile: ReconcileService, clock: Clock) -> None:
        self._reconcile = reconcile
        self._clock = clock
        self._last: ReconcileStatus | None = None
        self._running = asyncio.Lock()  # one run at a time per process

    @property
    def last(self) -> ReconcileStatus | None:
        """The last completed check, or None before the first one."""
        return self._last

    async def check(self) -> ReconcileStatus:
        """Run reconcile over every user now and remember its result; returns it. A run
        asked for while one is going waits for it and then runs again. A failed run
        (`StoreUnavailable`, ...) raises and leaves `last` as it was."""
        async with self._running:
            started = self._clock.now()
            report = await self._reconcile.run()
            self._last = ReconcileStatus(
                checked_at=started,
                ok=report.ok,
                drifts=len(report.drifts),
                users_checked=report.users_checked,
            )
            return self._last
