"""Periodic background jobs of the server (sweeps, expiry, billing, database probe)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from mana_credits_core.errors import StoreUnavailable
from mana_credits_core.ports import Store

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


class Reachability:
    """The database's reachability as last seen; one log line per change, never more.

    Unknown at start: a first success is silent, a first failure is a warning.
    """

    def __init__(self, where: Mapping[str, str]) -> None:
        self.where = dict(where)
        self.reachable: bool | None = None
        self._down_since = 0.0

    def seen(self, failure: BaseException | None) -> None:
        """Record one probe: `failure` is the `StoreUnavailable` it met, or None."""
        if failure is None:
            if self.reachable is False:
                down = round(time.monotonic() - self._down_since, 1)
                log.info(
                    "database reachable again",
                    extra={"fields": {**self.where, "downSeconds": down}},
                )
            self.reachable = True
            return
        if self.reachable is not False:
            self._down_since = time.monotonic()
            log.warning(
                "database unreachable",
                extra={"fields": {**self.where, "cause": cause_of(failure)}},
            )
        self.reachable = False


def cause_of(failure: BaseException) -> str:
    from mana_credits_adapters.sql.target import failure_cause

    return failure_cause(failure)


def where_is(store: Store) -> dict[str, str]:
    """The log fields naming the store: `database` (host:port or file), `url` (no password)."""
    address = getattr(store, "address", None)
    shown = getattr(store, "shown_url", None)
    fields = {"database": str(address) if address else type(store).__name__}
    if shown:
        fields["url"] = str(shown)
    return fields


@contextlib.asynccontextmanager
async def watch_reachability(store: Store, interval: float) -> AsyncIterator[Reachability]:
    """Ping `store` every `interval` seconds (the first at once) and log the changes."""
    watch = Reachability(where_is(store))

    async def loop() -> None:
        while True:
            try:
                await store.ping()
            except StoreUnavailable as exc:
                watch.seen(exc)
            except Exception:  # a busy pool, say: says nothing about reachability
                log.debug("reachability probe inconclusive", exc_info=True)
            else:
                watch.seen(None)
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop(), name="database reachability")
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
