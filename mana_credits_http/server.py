"""Running an app: aiohttp's runner, listening through the app's `ConnectionGuard`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from .connections import GuardedSite
from .keys import CONNECTIONS

# Seconds an idle keep-alive connection stays open (aiohttp's `run_app` default): longer
# than the proxies' own upstream keep-alive, so a proxy never reuses a connection the
# server is closing.
KEEPALIVE_TIMEOUT = 75.0


@contextlib.asynccontextmanager
async def serving(
    app: web.Application,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    shutdown_timeout: float = 10.0,
) -> AsyncIterator[GuardedSite]:
    """`app` started and listening on `host`:`port` (0: a free port, see `site.port`)
    for the length of the block; then stopped as aiohttp stops it: no new connections,
    requests under way given `shutdown_timeout` seconds, the app's cleanup run."""
    runner = web.AppRunner(
        app,
        access_log=None,  # `observe` writes the access log
        keepalive_timeout=KEEPALIVE_TIMEOUT,
        shutdown_timeout=shutdown_timeout,
    )
    await runner.setup()
    try:
        site = GuardedSite(runner, app[CONNECTIONS], host, port, reuse_port=reuse_port)
        await site.start()
        yield site
    finally:
        await runner.cleanup()


def run_app(
    app: web.Application,
    host: str,
    port: int,
    *,
    reuse_port: bool,
    shutdown_timeout: float,
    loop: asyncio.AbstractEventLoop,
    listening: Callable[[], object] | None = None,
) -> None:
    """Serve `app` in `loop` until `web.GracefulExit` (or KeyboardInterrupt) is raised
    there, then stop gracefully and close `loop`: `aiohttp.web.run_app` on a
    `GuardedSite`. `listening` is called once the app has started and its socket
    listens. Errors while starting (the app's startup, the bind) propagate."""

    async def main() -> None:
        async with serving(
            app, host, port, reuse_port=reuse_port, shutdown_timeout=shutdown_timeout
        ):
            if listening is not None:
                listening()
            await asyncio.Event().wait()  # until cancelled

    task = loop.create_task(main())
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(task)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(task)
        finally:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
