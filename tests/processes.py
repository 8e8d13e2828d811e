"""Child processes of the tests and the benchmark: each in a session (and so a process
group) of its own, killed with everything it started, with bounded waits.

A server that forks workers can leave them behind when only its own pid is killed; they
keep the port and any pipe the test reads, and the test run waits forever. Killing the
whole group (`os.killpg`) takes them too; `atexit` kills the groups still alive when the
test process ends some other way (a test interrupted by its timeout).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

WAIT = 30.0  # seconds to wait for a killed group's leader to be reaped

_groups: set[int] = set()


def group_alive(pgid: int) -> bool:
    """Whether any process of group `pgid` (the pid of its leader) is still running."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_group(pgid: int) -> None:
    """SIGKILL every process of group `pgid`; nothing when the group is gone already."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    _groups.discard(pgid)


def wait_group_gone(pgid: int, timeout: float) -> bool:
    """Poll until no process of group `pgid` is left (True) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@atexit.register
def _kill_leftovers() -> None:
    for pgid in list(_groups):
        kill_group(pgid)


async def spawn(*command: str, **options: Any) -> asyncio.subprocess.Process:
    """`asyncio.create_subprocess_exec` in a new session; pair with `reap` in a finally."""
    process = await asyncio.create_subprocess_exec(*command, start_new_session=True, **options)
    _groups.add(process.pid)
    return process


async def reap(process: asyncio.subprocess.Process, bound: float = WAIT) -> None:
    """Kill the process's whole group and wait (at most `bound` seconds) for it to end,
    its pipes included."""
    kill_group(process.pid)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.communicate(), bound)


@contextlib.asynccontextmanager
async def spawned(*command: str, **options: Any) -> AsyncIterator[asyncio.subprocess.Process]:
    """`spawn` for the length of the block, `reap`ed when it ends however it ends."""
    process = await spawn(*command, **options)
    try:
        yield process
    finally:
        await reap(process)


def popen(command: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen` in a new session; pair with `kill_group(process.pid)` in a
    finally, then a bounded `wait`."""
    process: subprocess.Popen[Any] = subprocess.Popen(command, start_new_session=True, **options)
    _groups.add(process.pid)
    return process


def run(
    command: Sequence[str], *, timeout: float = 300.0, check: bool = False, **options: Any
) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run` in a new session, bounded by `timeout` seconds; whatever it left
    in its group is killed afterwards. Raises `subprocess.TimeoutExpired` on timeout and
    `subprocess.CalledProcessError` for a non-zero exit when `check`."""
    if options.pop("capture_output", False):
        options |= {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    with popen(command, **options) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        finally:
            kill_group(process.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.communicate(timeout=WAIT)
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    if check:
        done.check_returncode()
    return done
