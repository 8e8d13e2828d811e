"""Row 2: the library in-process on the same PostgreSQL (no HTTP)."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
import uuid

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings

from .setup import user


async def library_debits(
    url: str, clients: int, users: int, seconds: float, *, batching: bool = True
) -> float:
    """Debits per second from `clients` concurrent callers of `CreditsService.use`."""
    settings = Settings(
        DATABASE_URL=url,
        MANA_CREDITS_DB_POOL_SIZE=max(4, min(clients, 40)),
        MANA_CREDITS_DEBIT_BATCHING=batching,
        MANA_CREDITS_DEBIT_WRITERS=int(os.environ.get("W", "1")),
        MANA_CREDITS_DEBIT_BATCH_WAIT_MS=float(os.environ.get("WAIT", "0")),
    )
    async with bootstrap(settings, migrate=False) as services:
        credits = services.credits
        deadline = time.perf_counter() + seconds
        counter = itertools.count()

        async def client() -> int:
            done = 0
            while time.perf_counter() < deadline:
                who = user(random.randint(1, users))
                await credits.use(who, 1, "bench", "debit", idempotency_key=str(uuid.uuid4()))
                done += 1
                next(counter)
            return done

        started = time.perf_counter()
        total = sum(await asyncio.gather(*(client() for _ in range(clients))))
        d = services.credits._debits
        if os.environ.get("BENCH_DEBUG"):
            print("tx", getattr(d, "transactions", None), getattr(d, "debits", None), total)
        return total / (time.perf_counter() - started)
