"""Periodic background jobs of the server (sweeps, expiry, billing)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger("mana_credits.background")


@contextlib.asynccontextmanager
async def periodic(
    name: str, interval: float, job: Callable[[], Awaitable[int]]
) -> AsyncIterator[None]:
    """Run `job` every `interval` seconds while the block runs.

    A failing run is logged and retried at the next interval. Every job is written
    to be safe when several processes or machines run it at the same time.
    """

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                done = await job()
            except Exception:
                log.exception("%s failed; retrying in %.0f s", name, interval)
                continue
            if done:
                log.info("%s: %d done", name, done)

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
