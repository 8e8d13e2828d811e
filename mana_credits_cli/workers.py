"""How many server processes `serve --workers auto` starts."""

from __future__ import annotations

import os

from mana_credits_adapters.errors import InvalidSetting
from mana_credits_adapters.settings import Settings

MAX_WORKERS = 64


def parse_workers(text: str) -> int | None:
    """`--workers`: a count from 1 to `MAX_WORKERS`, or `auto` (None). Raises
    `InvalidSetting` for anything else."""
    if text.strip().lower() == "auto":
        return None
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise InvalidSetting(
            f"--workers {text} is not a worker count, pass 1 to {MAX_WORKERS} or auto"
        )
    return int(text)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which containers and
    `taskset` narrow), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def connections_per_worker(settings: Settings) -> int:
    """The most PostgreSQL connections one worker opens: its pool (the pool size plus the
    overflow; the debit writer takes its connection from it) and the autocommit read
    pool beside it (the pool size, and as many again in overflow)."""
    return settings.db_pool_size + settings.db_max_overflow + 2 * settings.db_pool_size


def auto_workers(cpus: int, per_worker: int, connection_limit: int | None) -> int:
    """One worker per usable CPU (`cpus`), as many as the database's `connection_limit`
    holds at `per_worker` connections each, and at least one. `connection_limit` None:
    a store that is not PostgreSQL (SQLite, memory), served by one process."""
    if connection_limit is None:
        return 1
    return max(1, min(cpus, connection_limit // per_worker, MAX_WORKERS))
