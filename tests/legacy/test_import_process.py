"""The command as an operator runs it, in a process of its own: killed with SIGKILL in
the middle of an import and run again, and what it prints to a pipe or a terminal."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ..processes import WAIT, kill_group, popen, run
from .conftest import MakeDatabase
from .fixture import checksum, conninfo, fill_bulk
from .importing import Target, Targets, import_legacy, lasting, tables

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
BULK_USERS, BULK_ENTRIES = 5_000, 50_000
"""A source the import takes a few seconds to copy here: long enough to be caught at it."""
BOUND = 60.0  # seconds any wait below may take at most


def command(source: str, target: Target, *flags: str) -> list[str]:
    return [
        sys.executable, "-m", "mana_credits_cli", "db", "import-legacy",
        "--from", source, "--database-url", target.url, "--json", *flags,
    ]  # fmt: skip


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return env | {"PYTHONPATH": str(ROOT)} | extra


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        assert time.monotonic() < deadline, f"waited {BOUND:.0f} s for {what}"
        time.sleep(0.01)


def others_on(target: Target, where: str = "true") -> int:
    """Sessions on the target's database other than this check's own."""
    with psycopg.connect(conninfo(target.url), autocommit=True) as connection:
        found = connection.execute(
            "SELECT count(*) FROM pg_stat_activity"
            f" WHERE datname = current_database() AND pid <> pg_backend_pid() AND {where}"
        ).fetchone()
    return int(found[0]) if found else 0


def copying_entries(target: Target) -> bool:
    """Whether the import's transaction has written (it holds a transaction id) and is
    at the ledger entries, which come after the balances: rows are in, uncommitted."""
    return others_on(target, "backend_xid IS NOT NULL AND query LIKE '%import_transactions%'") > 0


def test_a_killed_import_leaves_nothing_and_the_rerun_is_one_clean_run(
    targets: Targets, make_legacy_database: MakeDatabase
) -> None:
    source = make_legacy_database()
    fill_bulk(source, users=BULK_USERS, entries=BULK_ENTRIES)
    target, clean = targets.postgres(), targets.postgres()
    empty, old = target.checksum(), checksum(source)
    process = popen(
        command(source, target), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment()
    )
    try:
        wait_until(
            lambda: process.poll() is not None or copying_entries(target), "the import to write"
        )
        assert process.poll() is None, "the import ended before it was caught writing"
        kill_group(process.pid)
        process.communicate(timeout=WAIT)
    finally:
        kill_group(process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=WAIT)
    assert process.returncode == -signal.SIGKILL
    # Its server session ends once it sees the client gone; nothing of it may stay.
    wait_until(lambda: others_on(target) == 0, "the killed import's session to end")
    assert target.checksum() == empty

    rerun = run(command(source, target), capture_output=True, text=True, env=environment())
    assert rerun.returncode == 0, rerun.stderr
    report: dict[str, Any] = json.loads(rerun.stdout)
    assert all(counts["skipped"] == 0 for counts in tables(report).values())
    assert tables(report)["transactions"]["written"] > BULK_ENTRIES
    reference = import_legacy(source, clean).report()
    assert lasting(report) == lasting(reference)
    assert target.checksum() == clean.checksum()
    assert checksum(source) == old


def test_a_pipe_gets_no_progress_bars(targets: Targets, legacy_url: str) -> None:
    done = run(
        command(legacy_url, targets.postgres()),
        capture_output=True,
        text=True,
        env=environment(TERM="xterm-256color"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["dryRun"] is False


def test_a_terminal_gets_progress_bars_and_stdout_stays_json(
    targets: Targets, legacy_url: str
) -> None:
    terminal, child_end = pty.openpty()
    process = popen(
        command(legacy_url, targets.postgres(), "--dry-run"),
        stdout=subprocess.PIPE,
        stderr=child_end,
        env=environment(TERM="xterm-256color", COLUMNS="120"),
    )
    os.close(child_end)
    shown = b""
    try:
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            ready, _, _ = select.select([terminal], [], [], 0.1)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(terminal, 65536)
            except OSError:  # the child closed the terminal (Linux: EIO)
                break
            if not chunk:
                break
            shown += chunk
        stdout, _ = process.communicate(timeout=BOUND)
    finally:
        kill_group(process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=WAIT)
        os.close(terminal)
    assert process.returncode == 0, shown.decode(errors="replace")
    text = shown.decode(errors="replace")
    assert "transactions" in text, text
    assert "gift_redemptions" in text, text
    assert "━" in text, text  # the bars themselves
    assert json.loads(stdout)["dryRun"] is True
