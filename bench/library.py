"""Row 2: the library in-process on the same PostgreSQL (no HTTP), default settings."""

from __future__ import annotations

import asyncio
import random
import time
import uuid

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings

from .setup import user


async def library_debits(url: str, clients: int, users: int, seconds: float) -> float:
    """Debits per second from `clients` concurrent callers of `CreditsService.use`."""
    async with bootstrap(Settings(DATABASE_URL=url), migrate=False) as services:
        credits = services.credits
        deadline = time.perf_counter() + seconds

        async def client() -> int:
            done = 0
            while time.perf_counter() < deadline:
                who = user(random.randint(1, users))
                # Apps send an idempotency key with every debit; so does the benchmark.
                await credits.use(who, 1, "bench", "debit", idempotency_key=str(uuid.uuid4()))
                done += 1
            return done

        started = time.perf_counter()
        total = sum(await asyncio.gather(*(client() for _ in range(clients))))
        return total / (time.perf_counter() - started)
