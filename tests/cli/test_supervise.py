"""`serve --workers N`'s supervisor with real worker processes standing in for servers:
a worker that dies while serving is replaced, one that dies before stops everything,
one stuck stopping is killed after the grace period."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from mana_credits_cli.supervise import Supervisor, spawn_context

CONTEXT = spawn_context()
BOUND = 60.0  # seconds any of these workers may live: none outlives a failed test


def _starts(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def _note_start(log: Path) -> None:
    with log.open("a") as out:
        out.write(f"{os.getpid()}\n")


def _serve_until_sigterm() -> None:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:  # SIGTERM's default action ends it
        time.sleep(0.05)


def dies_at_start(ready: Event, log: Path) -> None:
    _note_start(log)
    sys.exit(3)


def dies_twice_while_serving(ready: Event, log: Path) -> None:
    _note_start(log)
    ready.set()
    if _starts(log) <= 2:
        os._exit(1)  # as an out-of-memory kill would end it
    _serve_until_sigterm()


def serves(ready: Event, log: Path) -> None:
    _note_start(log)
    ready.set()
    _serve_until_sigterm()


def ignores_sigterm(ready: Event, log: Path) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serves(ready, log)


def stops_cleanly(ready: Event, log: Path) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serves(ready, log)


def maker(target: Callable[[Event, Path], None], log: Path) -> Callable[[Event], SpawnProcess]:
    def start(ready: Event) -> SpawnProcess:
        return CONTEXT.Process(target=target, args=(ready, log), daemon=True)

    return start


def sigterm_when(condition: Callable[[], bool]) -> threading.Thread:
    """SIGTERM to this process (the supervisor's parent role) once `condition` holds."""

    def watch() -> None:
        deadline = time.monotonic() + BOUND
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_worker_that_dies_before_serving_stops_the_server(tmp_path: Path) -> None:
    log = tmp_path / "starts"
    supervisor = Supervisor(CONTEXT, maker(dies_at_start, log), 2, stop_grace=5.0)
    assert supervisor.run() == 1
    # None was started again (the second may be stopped before it even notes its start).
    assert 1 <= _starts(log) <= 2


def test_a_worker_that_dies_while_serving_is_replaced(tmp_path: Path) -> None:
    log = tmp_path / "starts"
    supervisor = Supervisor(CONTEXT, maker(dies_twice_while_serving, log), 1, stop_grace=5.0)
    sigterm_when(lambda: _starts(log) >= 3)
    assert supervisor.run() == 0
    assert _starts(log) == 3  # the first two died serving; the third stopped on SIGTERM


def test_a_clean_stop_exits_0_and_gives_back_the_signal_handlers(tmp_path: Path) -> None:
    log = tmp_path / "starts"
    before = signal.getsignal(signal.SIGTERM)
    supervisor = Supervisor(CONTEXT, maker(stops_cleanly, log), 2, stop_grace=5.0)
    sigterm_when(lambda: _starts(log) >= 2)
    assert supervisor.run() == 0
    assert _starts(log) == 2
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_worker_stuck_stopping_is_killed_after_the_grace_period(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "starts"
    supervisor = Supervisor(CONTEXT, maker(ignores_sigterm, log), 2, stop_grace=1.0)
    sigterm_when(lambda: _starts(log) >= 2)
    started = time.monotonic()
    assert supervisor.run() == 1
    assert time.monotonic() - started < BOUND / 2
    pids = [int(pid) for pid in (log.read_text().split())]
    assert len(pids) == 2
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)  # killed and reaped
    killed = [r for r in caplog.records if "grace period" in r.getMessage()]
    assert len(killed) == 2
