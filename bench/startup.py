"""Row 6: how long `mana-credits --help` takes to start, idle, against `python -c pass`.

Each run is a fresh interpreter with PYTHONDONTWRITEBYTECODE=1, so nothing of the
project is cached as bytecode (as on a machine that sets it). `python -m bench.startup`
runs this part alone.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RUNS = 9
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Startup:
    help_ms: float  # median wall time of `mana-credits --help`
    baseline_ms: float  # median wall time of `python -c pass`, the interpreter alone
    runs: int

    @property
    def ratio(self) -> float:
        return self.help_ms / self.baseline_ms


def _median_ms(command: list[str], runs: int) -> float:
    env = os.environ | {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def cli_startup(runs: int = RUNS) -> Startup:
    """Median wall times (milliseconds) of `--help` and of a bare interpreter."""
    baseline = _median_ms([sys.executable, "-c", "pass"], runs)
    help_ms = _median_ms([sys.executable, "-m", "mana_credits_cli", "--help"], runs)
    return Startup(help_ms, baseline, runs)


def print_startup(result: Startup) -> None:
    print(
        f"  6  mana-credits --help: {result.help_ms:.0f} ms median of {result.runs} runs "
        f"(python -c pass: {result.baseline_ms:.0f} ms; {result.ratio:.1f}x)"
    )


if __name__ == "__main__":
    print_startup(cli_startup())
