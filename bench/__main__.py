"""`python -m bench` (or `nox -s bench`): the debit path against the database's own limit.

One run starts a PostgreSQL with the settings of a default install (`fsync` and
`synchronous_commit` on), then measures, each for BENCH_SECONDS (default 10):

1. pgbench -M prepared running one debit's SQL: the database's own limit;
2. the library in-process (`CreditsService.use`, group commit on);
3. the server (`mana-credits serve`) under wrk: POST /api/v1/internal/credits/use;
4. reads with 1,000,000 ledger entries: balance and transaction history;
5. the Cloud Sync billing run over 100,000 due subscriptions;
6. the admin CLI's start: `mana-credits --help`, measured first, on an idle machine;
7. the legacy import of an old database of 1,000,000 ledger entries for 100,000 users,
   against PostgreSQL copying the same entries raw between the two databases.

Rows 1-3 run at 1, 16 and 64 clients, for 10,000 random users and for one hot user,
and show their ratio to row 1 at the same concurrency and user mix.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

from mana_credits_adapters.identity.dev import SigningKey

from . import load
from .billing import billing_run
from .legacy import legacy_import
from .library import library_debits
from .pgbench import pgbench_debits
from .setup import BenchDatabase, user
from .startup import cli_startup, print_startup

USERS = 10_000
CLIENTS = (1, 16, 64)
MIXES = ((USERS, "10k random"), (1, "1 hot"))
LEDGER_ENTRIES = 1_000_000


@dataclass
class Row:
    row: int
    what: str
    users: str
    clients: int
    per_second: float
    limit: float | None = None  # row 1's figure at the same clients and user mix
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int | None = None
    rss_mb: float | None = None


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "10"))
    subscriptions = int(os.environ.get("BENCH_SUBSCRIPTIONS", "100000"))
    workers = int(os.environ.get("BENCH_WORKERS", "1"))
    import_entries = int(os.environ.get("BENCH_IMPORT_ENTRIES", "1000000"))
    import_users = int(os.environ.get("BENCH_IMPORT_USERS", "100000"))
    started = time.monotonic()
    startup = cli_startup()
    rows: list[Row] = []
    with BenchDatabase.start() as db:
        db.prepare(USERS)
        limits: dict[tuple[int, int], float] = {}
        for users, mix in MIXES:
            for clients in CLIENTS:
                tps = pgbench_debits(db, clients, users, seconds)
                limits[(users, clients)] = tps
                rows.append(Row(1, "pgbench: one debit's SQL", mix, clients, tps, tps))
                progress(rows[-1])
        for users, mix in MIXES:
            for clients in CLIENTS:
                rate = asyncio.run(library_debits(db.url, clients, users, seconds))
                limit = limits[(users, clients)]
                rows.append(Row(2, "library in-process", mix, clients, rate, limit))
                progress(rows[-1])
        key = SigningKey.generate()
        with load.jwks_endpoint(key) as issuer, load.server(db, issuer, workers) as server:
            for users, mix in MIXES:
                for clients in CLIENTS:
                    result = load.wrk(server, load.debit_script(users), clients, seconds)
                    limit = limits[(users, clients)]
                    rows.append(
                        http_row(3, "HTTP POST internal/credits/use", mix, clients, result, limit)
                    )
                    progress(rows[-1])
            db.fill_ledger(LEDGER_ENTRIES, USERS)
            entries = db.count("credits.transactions")
            tokens = [key.mint(user(n), issuer=issuer) for n in range(1, 1001)]
            for path, what in (
                ("/api/v1/credits/balance", "HTTP GET credits/balance"),
                ("/api/v1/credits/transactions", "HTTP GET credits/transactions"),
            ):
                for clients in CLIENTS:
                    result = load.wrk(server, load.read_script(path, tokens), clients, seconds)
                    rows.append(http_row(4, what, f"{entries:,} entries", clients, result, None))
                    progress(rows[-1])
        charged, elapsed = asyncio.run(billing_run(db.url, subscriptions))
        rows.append(Row(5, "billing run (subscriptions)", f"{charged:,} due", 1, charged / elapsed))
        progress(rows[-1])
        imported = legacy_import(db, import_users, import_entries)
        what = "legacy import (rows written)"
        mix = f"{imported.entries:,} entries"
        rate = imported.rows / imported.seconds
        rows.append(Row(7, what, mix, 1, rate, imported.reference_rows_per_second))
        progress(rows[-1])
    print_table(rows, seconds, workers, time.monotonic() - started)
    print_startup(startup)
    print(
        f"legacy import: {imported.entries:,} ledger entries for {imported.users:,} users,"
        f" {imported.rows:,} rows written in {imported.seconds:.1f} s (whole command);"
        " x row 1 there is the ratio to PostgreSQL's raw copy of the same entries"
    )


def http_row(
    row: int, what: str, users: str, clients: int, result: load.LoadResult, limit: float | None
) -> Row:
    return Row(
        row,
        what,
        users,
        clients,
        result.requests_per_second,
        limit,
        result.p50_ms,
        result.p99_ms,
        result.errors,
        result.peak_rss_mb,
    )


def progress(row: Row) -> None:
    print(
        f"  row {row.row}: {row.what}, {row.users}, {row.clients} clients: {row.per_second:,.0f}/s",
        flush=True,
    )


def print_table(rows: list[Row], seconds: float, workers: int, total: float) -> None:
    def optional(value: float | None, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    header = (
        f"{'row':>3}  {'what':<32} {'users':<20} {'clients':>7} {'per second':>11} "
        f"{'x row 1':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'RSS MB':>7}"
    )
    print()
    print(
        f"PostgreSQL with fsync and synchronous_commit on; {seconds:g} s per run; "
        f"server workers: {workers}; whole run {total:.0f} s"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = "" if r.limit is None else f"{r.per_second / r.limit:.2f}"
        print(
            f"{r.row:>3}  {r.what:<32} {r.users:<20} {r.clients:>7} {r.per_second:>11,.0f} "
            f"{ratio:>8} {optional(r.p50_ms, '.2f'):>7} {optional(r.p99_ms, '.2f'):>7} "
            f"{optional(r.errors, 'd'):>6} {optional(r.rss_mb, '.0f'):>7}"
        )


if __name__ == "__main__":
    main()
