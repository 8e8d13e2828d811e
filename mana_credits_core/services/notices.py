"""Telling a user that a debit took their spendable balance below a threshold."""

from __future__ import annotations

import asyncio
import logging

from ..lots import crossed_low
from ..ports import Notifier

log = logging.getLogger("mana_credits.notices")

DEFAULT_LOW_BALANCE = 50
"""Credits below which a user hears that their balance runs low (`MANA_CREDITS_LOW_BALANCE`)."""


DRAIN_SECONDS = 5.0
"""How long closing the services waits for low-balance notices still being sent."""


class LowBalanceAlerts:
    """Notifies a user when a debit takes their spendable balance from at or above
    `threshold` credits to below it: once per crossing, since the next debit starts
    below the threshold and a top-up above it arms the alert again. 0 turns it off.

    Called after the debit has committed, never inside its transaction; a notice that
    fails is logged and dropped, and the debit stands (the balance is in the app).
    """

    def __init__(self, notifier: Notifier, threshold: int = DEFAULT_LOW_BALANCE) -> None:
        if threshold < 0:
            raise ValueError("the low-balance threshold is 0 credits or more")
        self._notifier = notifier
        self.threshold = threshold
        self._sending: set[asyncio.Task[None]] = set()

    async def debited(self, user_id: str, before: int, after: int) -> None:
        """A committed debit took the spendable balance from `before` to `after`
        credits: notify the user if that crossed the threshold. Never raises, and never
        waits for the notification service: the notice is sent in the background, so
        the debit's caller gets its answer at once (`drain` waits for what is left)."""
        if not crossed_low(before, after, self.threshold):
            return
        task = asyncio.ensure_future(self._send(user_id, after))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, user_id: str, balance: int) -> None:
        try:
            await self._notifier.low_balance(user_id, balance=balance, threshold=self.threshold)
        except Exception:
            log.warning("the low-balance notice to %s failed; dropped", user_id, exc_info=True)

    async def drain(self) -> None:
        """Wait up to `DRAIN_SECONDS` for the notices still being sent (on close, and
        by tests); those still pending then are cancelled and logged."""
        pending = set(self._sending)
        if not pending:
            return
        _done, late = await asyncio.wait(pending, timeout=DRAIN_SECONDS)
        for task in late:
            task.cancel()
        if late:
            log.warning("%d low-balance notices dropped at close", len(late))
