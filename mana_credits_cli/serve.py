"""`mana-credits serve`: run the HTTP server (one process, or N sharing one port)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from typing import Annotated

import typer
from aiohttp import web

from mana_credits_adapters.bootstrap import bootstrap, check_database_url, shown_database_url
from mana_credits_adapters.errors import (
    CannotListen,
    DatabaseUnreachable,
    InvalidSetting,
    MissingSetting,
    PortInUse,
)
from mana_credits_adapters.identity.dev import SigningKey
from mana_credits_adapters.schema import check_schema
from mana_credits_adapters.settings import DEV_SERVICE_KEY, MAX_PORT, Settings
from mana_credits_http import create_app
from mana_credits_http.observability import configure_logging
from mana_credits_http.server import run_app

from .runtime import console, reported
from .supervise import Supervisor, spawn_context
from .workers import auto_workers, connections_per_worker, parse_workers, usable_cpus

log = logging.getLogger("mana_credits.serve")


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 only when asked.")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int | None,
        typer.Option(help="Port, 0 to 65535; 0 picks a free one (default: $PORT or 3061)."),
    ] = None,
    workers: Annotated[
        str,
        typer.Option(
            help="Server processes sharing the port, 1 to 64, or auto: one per CPU this "
            "process may use, as many as PostgreSQL's max_connections holds (1 on SQLite)."
        ),
    ] = "1",
) -> None:
    """Start the server. With nothing configured: the embedded default (SQLite, dev identity).

    \b
    Examples:
      mana-credits serve
      DATABASE_URL=postgresql://mana@db/mana_credits MANA_AUTH_URL=https://auth.example \\
        MANA_SERVICE_KEY=... STRIPE_SECRET_KEY=... STRIPE_WEBHOOK_SECRET=... \\
        mana-credits serve --host 0.0.0.0 --workers 4
    """
    with reported():
        asked = parse_workers(workers)
        if port is not None:
            # Checked here, not by the option's range: a setup fault is one line.
            if not 0 <= port <= MAX_PORT:
                raise InvalidSetting(f"--port {port} is not a port, pass 0 to {MAX_PORT}")
            # Every worker (and links' default BASE_URL) reads the port from the
            # settings; spawned workers inherit the environment.
            os.environ["PORT"] = str(port)
        settings = Settings()
        if not settings.is_embedded:
            check_database_url(settings.effective_database_url)  # it says most
        problems = settings.production_problems()
        if problems:
            them = "them" if len(problems) > 1 else "it"
            raise MissingSetting(
                f"{'; '.join(problems)}: production mode (PostgreSQL) refuses to start, "
                f"set {them} (README: Configuration)"
            )
        bind_port = settings.port
        # Every setup fault is found before the banner says the server is listening.
        check_port(host, bind_port)
        # Migrate and stock the catalogue once, before the workers race to do it.
        connection_limit = asyncio.run(_prepare(settings, limit=asked is None))
        count = asked
        if count is None:
            count = auto_workers(usable_cpus(), connections_per_worker(settings), connection_limit)
        if settings.dev_identity:
            SigningKey.load_or_create(settings.home)
    configure_logging(settings.log_level)
    if asked is None:
        log.info(
            "workers: auto",
            extra={"fields": {"workers": count, "cpus": usable_cpus(),
                              "connectionLimit": connection_limit}},
        )  # fmt: skip
    if settings.is_embedded:
        banner(settings, host, bind_port)
    if count == 1:
        with reported():
            try:
                run_worker(host, bind_port, reuse_port=False)
            except OSError as exc:
                if exc.errno not in BIND_ERRORS:
                    raise
                raise listen_error(host, bind_port, exc) from exc  # taken since the check
        return
    context = spawn_context()

    def worker(ready: Event) -> SpawnProcess:
        return context.Process(
            target=run_worker,
            args=(host, bind_port, True),
            kwargs={"parent": os.getpid(), "ready": ready},
        )

    grace = 2 * settings.shutdown_timeout_seconds + STOP_CLEANUP
    if Supervisor(context, worker, count, grace).run():
        raise typer.Exit(1)


# Seconds a stopping worker gets beyond its requests' time: the app's cleanup (the
# debit writers' last batch, the pools) before `serve` kills it.
STOP_CLEANUP = 5.0


async def _prepare(settings: Settings, *, limit: bool = False) -> int | None:
    """Migrate (or, where `serve` does not migrate, check the schema) and stock the
    catalogue. `limit`: also return the database's connection limit (None when not
    asked, or when the store is not PostgreSQL). Raises `SchemaOutdated` for a reachable
    database whose schema is behind the code's; an unreachable one is no reason not to
    start (readiness says so until it is back)."""
    async with bootstrap(settings) as services:
        if not settings.migrate_on_start:
            with contextlib.suppress(DatabaseUnreachable):
                await check_schema(services.store, settings.effective_database_url)
        found = getattr(services.store, "connection_limit", None)
        return await found() if limit and callable(found) else None


BIND_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


def check_port(host: str, port: int) -> None:
    """Bind every address of `host`:`port` as the server will, and let go.

    Raises `PortInUse` or `CannotListen`. Without `SO_REUSEPORT` here, a server already
    sharing the port with `--workers` is found as well.
    """
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise CannotListen(
            f"cannot resolve --host {host}: {exc}, pass an address such as 127.0.0.1"
        ) from exc
    for family, kind, proto, _name, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            # As asyncio does for a server: a port in TIME_WAIT is free, one listened on is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise listen_error(host, port, exc) from exc


def listen_error(host: str, port: int, error: OSError) -> PortInUse | CannotListen:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return PortInUse(f"{where} is in use, stop the other server or pass --port")
    return CannotListen(
        f"cannot listen on {where}: {error.strerror or error}, pass another --host or --port"
    )


def run_worker(
    host: str, port: int, reuse_port: bool, parent: int | None = None, ready: Event | None = None
) -> None:
    """Serve on `host`:`port` until SIGTERM/SIGINT. `parent`: the pid of the `serve`
    process that started this worker; the worker stops when that process is gone.
    `ready` is set once the server listens."""
    if parent is not None:
        # A worker outliving its parent would keep the port (and whatever pipes it
        # inherited) with nobody left to stop it: SIGTERM as soon as the parent dies.
        _terminate_with_parent(parent)
    stop_on = [signal.SIGTERM]
    if reuse_port:  # a worker: Ctrl-C reaches the parent, which stops workers one by one
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:
        stop_on.append(signal.SIGINT)
    loop = asyncio.new_event_loop()
    stop_once_on(loop, *stop_on)
    settings = Settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    app.on_startup.append(_freeze_startup_objects)
    if parent is not None:
        app.cleanup_ctx.append(_parent_watchdog(parent))
    try:
        # Signals are stop_once_on's: a second one must not cut the cleanup short.
        run_app(
            app,
            host,
            port,
            reuse_port=reuse_port,
            shutdown_timeout=settings.shutdown_timeout_seconds,
            loop=loop,
            listening=None if ready is None else ready.set,
        )
    finally:
        # Closing the loop gave the signals back their default (die at once) while the
        # interpreter still winds down: stopping is already under way, ignore them.
        for signum in stop_on:
            signal.signal(signum, signal.SIG_IGN)


def stop_once_on(loop: asyncio.AbstractEventLoop, *signals: int) -> None:
    """The first of `signals` stops the server gracefully (aiohttp's `GracefulExit`);
    any later one is ignored, said in one log line: cancelling the shutdown half-way
    would abandon the requests being finished and the database connections being closed.
    """
    received = 0

    def on_signal(signum: int) -> None:
        nonlocal received
        received += 1
        if received == 1:
            raise web.GracefulExit()
        if received == 2:
            log.warning(
                "already stopping: signal ignored until the shutdown is over",
                extra={"fields": {"signal": signal.Signals(signum).name}},
            )

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_CHECK_INTERVAL = 1.0  # seconds between two looks at the parent pid (fallback)


def _terminate_with_parent(parent: int) -> None:
    """On Linux, have the kernel send SIGTERM to this process when its parent dies; if the
    parent is already gone (it died before the request took effect), stop now."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # re-parented already: the signal will never come
        os.kill(os.getpid(), signal.SIGTERM)


async def watch_parent(
    parent: int, on_orphaned: Callable[[], None], interval: float = PARENT_CHECK_INTERVAL
) -> None:
    """Call `on_orphaned` once the parent pid is no longer `parent` (the parent died and
    the process was re-parented), checking every `interval` seconds; then return. The
    portable fallback for where the kernel does not signal a parent's death."""
    while os.getppid() == parent:  # noqa: ASYNC110 (no event tells of a new parent)
        await asyncio.sleep(interval)
    on_orphaned()


def _parent_watchdog(parent: int) -> Callable[[web.Application], AsyncIterator[None]]:
    async def watchdog(_app: web.Application) -> AsyncIterator[None]:
        # SIGTERM to itself: the same graceful shutdown as a SIGTERM from the parent.
        task = asyncio.create_task(
            watch_parent(parent, lambda: os.kill(os.getpid(), signal.SIGTERM))
        )
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return watchdog


async def _freeze_startup_objects(_app: web.Application) -> None:
    # Everything alive once the app is up (modules, services, pools) lives as long as
    # the process: keep it out of the collector's full passes, which otherwise stall
    # the event loop for tens of milliseconds under load.
    gc.collect()
    gc.freeze()


def banner(settings: Settings, host: str, port: int) -> None:
    lines = [
        "[bold]mana-credits — embedded default (development)[/bold]",
        f"  listening  http://{host}:{port}",
        f"  store      {shown_database_url(settings.effective_database_url)}",
    ]
    if settings.dev_identity:
        lines += [
            f"  identity   dev signing key in {settings.home} (JWKS at /api/auth/jwks)",
            "  token      mana-credits dev token --user alice",
        ]
    if DEV_SERVICE_KEY in settings.service_keys:
        lines.append(f"  service    X-Service-Key: {DEV_SERVICE_KEY}")
    lines.append("  not for production: set DATABASE_URL (PostgreSQL) and MANA_AUTH_URL")
    console.print("\n".join(lines))
