"""The whole machine's busy CPU time, to tell what one request costs every process
together (the load generator, the server, PostgreSQL), not the server alone."""

from __future__ import annotations

import os
from pathlib import Path


def busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy since boot (user, nice, system,
    irq, softirq, steal from /proc/stat; idle and iowait left out); 0.0 off Linux."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0]
    except OSError:
        return 0.0
    ticks = [int(n) for n in first.split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cores() -> int:
    """Cores this process may run on (what the load shares)."""
    return len(os.sched_getaffinity(0))
