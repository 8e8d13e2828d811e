"""The real `mana-credits serve` process: starts on the embedded default, stops on SIGTERM;
its workers share one port and never outlive it, even when it is SIGKILLed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings
from mana_credits_cli.serve import watch_parent

from ..postgres import free_port
from ..processes import reap, spawn, spawned

CLI = (sys.executable, "-m", "mana_credits_cli")
# Generous: a cold start imports a lot, and without a bytecode cache (as where
# PYTHONDONTWRITEBYTECODE is set) each worker takes seconds more.
STARTUP = 120.0
EXIT = 60.0  # seconds for a stopped server (or its orphaned workers) to be gone


def embedded_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MANA_AUTH_URL")}
    return env | {"MANA_CREDITS_HOME": str(home), "MANA_SERVICE_KEY": ""}


async def until(condition: Callable[[], bool], bound: float) -> bool:
    """Poll `condition` until true (True) or `bound` seconds pass (False)."""
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def wait_ready(
    http: aiohttp.ClientSession, url: str, server: asyncio.subprocess.Process
) -> None:
    """Poll `url` until it answers 200; fails if the server exits or STARTUP passes."""
    deadline = time.monotonic() + STARTUP
    while True:
        try:
            async with http.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        assert server.returncode is None, "the server exited before it was ready"
        assert time.monotonic() < deadline, f"{url} not ready within {STARTUP:.0f} s"
        await asyncio.sleep(0.1)


def workers_of(parent: int) -> list[int]:
    """The pids of the `multiprocessing` workers that `parent` spawned (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"--multiprocessing-fork" in command:
            found.append(int(entry.name))
    return found


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds a socket listening on 127.0.0.1:`port` (Linux /proc):
    a worker that has started serving."""
    try:
        inodes = {
            os.readlink(fd)[len("socket:[") : -1]
            for fd in Path(f"/proc/{pid}/fd").iterdir()
            if os.readlink(fd).startswith("socket:[")
        }
        table = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    for line in table:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if local.endswith(f":{port:04X}") and state == "0A" and inode in inodes:
            return True
    return False


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting for its reaper is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def port_free(port: int) -> bool:
    """A new server could bind the port (with SO_REUSEADDR, as servers do)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def test_serve_embedded_default_then_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = embedded_env(tmp_path) | {"PORT": str(port)}
    server = await spawn(*CLI, "serve", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, base + "/health", server)
            async with spawned(
                *CLI, "dev", "token", "--user", "alice", env=env, stdout=subprocess.PIPE
            ) as minting:
                token = (await asyncio.wait_for(minting.communicate(), STARTUP))[0]
            assert minting.returncode == 0
            headers = {"X-Service-Key": "dev-service-key"}
            grant = {"userId": "alice", "amount": 50, "description": "welcome"}
            async with http.post(
                base + "/api/v1/internal/credits/refund", json=grant, headers=headers
            ) as response:
                assert response.status == 200
            use = {"amount": 20, "appId": "chat", "description": "hello", "idempotencyKey": "k"}
            async with http.post(
                base + "/api/v1/credits/use",
                json=use,
                headers={"Authorization": f"Bearer {token.decode().strip()}"},
            ) as response:
                assert response.status == 200
                assert (await response.json())["newBalance"]["balance"] == 30
        server.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(server.communicate(), timeout=EXIT))[0].decode()
        assert server.returncode == 0, output
        assert "embedded default" in output
    finally:
        await reap(server)
    settings = Settings(MANA_CREDITS_HOME=tmp_path)
    async with bootstrap(settings) as services:
        assert (await services.credits.balance("alice")).balance == 30
        assert (await services.reconcile.run()).ok


async def two_workers(home: Path, port: int) -> asyncio.subprocess.Process:
    """`serve --workers 2` on the embedded default in `home`, its output piped."""
    return await spawn(
        *CLI, "serve", "--port", str(port), "--workers", "2",
        env=embedded_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


async def every_worker_answers(http: aiohttp.ClientSession, base: str) -> None:
    for _ in range(20):  # whichever worker the kernel picks answers
        async with http.get(base + "/api/v1/credits/packages") as response:
            assert response.status == 200


async def stopped_cleanly(server: asyncio.subprocess.Process) -> str:
    """SIGTERM, then the server's output once it exited 0 without a traceback."""
    server.send_signal(signal.SIGTERM)
    output = (await asyncio.wait_for(server.communicate(), timeout=EXIT))[0].decode()
    assert server.returncode == 0, output
    assert "Traceback" not in output
    return output


async def test_serve_with_two_workers_shares_one_port(tmp_path: Path) -> None:
    port = free_port()
    server = await two_workers(tmp_path, port)
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, base + "/health/ready", server)
            await every_worker_answers(http, base)
        await stopped_cleanly(server)
    finally:
        await reap(server)
    async with bootstrap(Settings(MANA_CREDITS_HOME=tmp_path)) as services:
        # Prepared once before the workers started: one catalogue, not one per worker.
        assert len(await services.purchases.packages()) == 4


async def test_workers_exit_when_the_parent_is_sigkilled(tmp_path: Path) -> None:
    port = free_port()
    server = await spawn(
        *CLI, "serve", "--port", str(port), "--workers", "2",
        env=embedded_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, f"http://127.0.0.1:{port}/health/ready", server)
        workers = workers_of(server.pid)
        assert len(workers) == 2, workers
        server.send_signal(signal.SIGKILL)  # no chance to stop its workers itself
        assert await asyncio.wait_for(server.wait(), EXIT) == -signal.SIGKILL
        left = await until(lambda: not any(running(pid) for pid in workers), EXIT)
        assert left, f"workers still running {EXIT:.0f} s after their parent was killed"
        assert await until(lambda: port_free(port), EXIT), "the port is still taken"
    finally:
        await reap(server)


async def test_the_watchdog_notices_a_new_parent() -> None:
    orphaned: list[bool] = []
    # The parent pid is not the one given: as after the parent died and init adopted us.
    await asyncio.wait_for(watch_parent(-1, lambda: orphaned.append(True), 0.01), EXIT)
    assert orphaned == [True]
    with pytest.raises(TimeoutError):  # the real parent: nothing happens
        await asyncio.wait_for(watch_parent(os.getppid(), lambda: orphaned.append(True), 0.01), 0.3)
    assert orphaned == [True]


async def test_a_worker_killed_while_serving_is_replaced(tmp_path: Path) -> None:
    port = free_port()
    server = await two_workers(tmp_path, port)
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, base + "/health/ready", server)
            first = workers_of(server.pid)
            assert len(first) == 2, first
            # Both serving: one that dies before it serves stops the server instead.
            serving = await until(lambda: all(listens(pid, port) for pid in first), EXIT)
            assert serving, f"the workers {first} do not all listen on {port}"
            await asyncio.sleep(0.5)  # from listening to telling the parent: instructions
            os.kill(first[0], signal.SIGKILL)  # as the out-of-memory killer would
            replaced = await until(
                lambda: len(now := workers_of(server.pid)) == 2 and first[0] not in now, EXIT
            )
            assert replaced, f"no new worker within {EXIT:.0f} s: {workers_of(server.pid)}"
            await wait_ready(http, base + "/health/ready", server)
            await every_worker_answers(http, base)
        output = await stopped_cleanly(server)
        assert "a worker died while serving: starting another" in output
    finally:
        await reap(server)
