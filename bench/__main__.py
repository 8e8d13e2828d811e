"""`python -m bench` (or `nox -s bench`): figures as a table, never as a test."""

from __future__ import annotations

import asyncio
import os
import sys
import time

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings
from mana_credits_core import TransactionType

from .billing import billing_run


async def library_debits(seconds: float = 3.0) -> tuple[int, float]:
    async with bootstrap(Settings(DATABASE_URL="memory://")) as services:
        await services.credits.credit("bench", 10**8, TransactionType.GRANT, "bench funds")
        done = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            await services.credits.use("bench", 1, "bench", "debit")
            done += 1
        return done, time.perf_counter() - start


def postgres() -> tuple[str, object | None]:
    sys.path.insert(0, os.getcwd())
    from tests.postgres import postgres_url

    return postgres_url()


def main() -> None:
    subscriptions = int(os.environ.get("BENCH_SUBSCRIPTIONS", "100000"))
    rows: list[tuple[str, int, float]] = []
    done, elapsed = asyncio.run(library_debits())
    rows.append(("library debits, memory store, 1 client", done, elapsed))
    url, cluster = postgres()
    try:
        charged, elapsed = asyncio.run(billing_run(url, subscriptions))
        rows.append((f"billing run, PostgreSQL, {subscriptions:,} due", charged, elapsed))
    finally:
        if cluster is not None:
            cluster.stop()  # type: ignore[attr-defined]
    print(f"{'what':<48} {'operations':>12} {'seconds':>9} {'per second':>12}")
    for what, count, seconds in rows:
        print(f"{what:<48} {count:>12,} {seconds:>9.2f} {count / seconds:>12,.0f}")


if __name__ == "__main__":
    main()
