"""`python -m bench`: debits per second through the library on the in-memory store."""

from __future__ import annotations

import asyncio
import time

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings
from mana_credits_core import TransactionType


async def library_debits(seconds: float = 3.0) -> tuple[int, float]:
    async with bootstrap(Settings(DATABASE_URL="memory://")) as services:
        await services.credits.credit("bench", 10**8, TransactionType.GRANT, "bench funds")
        done = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            await services.credits.use("bench", 1, "bench", "debit")
            done += 1
        return done, time.perf_counter() - start


def main() -> None:
    done, elapsed = asyncio.run(library_debits())
    print(f"{'what':<32} {'ops':>10} {'ops/s':>10}")
    print(f"{'library debits, memory store':<32} {done:>10} {done / elapsed:>10.0f}")


if __name__ == "__main__":
    main()
