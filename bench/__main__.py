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
   against PostgreSQL copying the same entries raw between the two databases;
8. debits with credit lots: the library in-process (as row 2) at BENCH_LOT_CLIENTS (16)
   clients over BENCH_LOT_USERS (10,000) users holding one lot each, then as many users
   holding 20 lots each (differing priorities and expiries), the two groups taking
   turns four times; x row 1 is the ratio to the 1-lot figure;
9. the expiry sweep (`LotsService.expire`) over BENCH_SWEEP_USERS (20,000) users with
   BENCH_SWEEP_LOTS (5) lots each past their expiry: lots expired per second.

Rows 1-3 run at 1, 16 and 64 clients, for 10,000 random users and for one hot user,
and show their ratio to row 1 at the same concurrency and user mix.
BENCH_ONLY=lots runs rows 8 and 9 alone (the schema, then their own seeded users);
BENCH_ONLY=http runs rows 1 and 3 alone (the database's limit and the server);
BENCH_ONLY=reads runs row 4 alone (the schema, the funded users and the ledger it reads).
BENCH_LEDGER_ENTRIES (default 1,000,000) sets row 4's seeded ledger entries.
BENCH_ONLY=billing runs row 5 alone, over BENCH_SUBSCRIPTIONS (100,000) due subscriptions.
BENCH_ONLY=library runs rows 1 and 2 alone (the database's limit and the library).
BENCH_WORKERS=1,2,4 runs row 3 once per server worker count (default 1); every run of
row 3 shows the server's CPU time per request (all its processes, user + system).
Rows 1 and 3 also show `all µs`: the whole machine's busy CPU per debit (the load
generator, the server and PostgreSQL together), which tells whether the machine's cores,
not the code's waits, set the rate; row 1's p50/p99 come from pgbench's own log.
BENCH_PROFILE=debit.svg records a py-spy flame graph of the server (every worker) during
row 3's 64-client, random-user run with the first worker count.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from dataclasses import dataclass

from mana_credits_adapters.identity.dev import SigningKey

from . import load
from .billing import billing_run
from .legacy import ImportResult, legacy_import
from .library import library_debits
from .lots import DebitsWithLots, Sweep, debits_with_lots, expiry_sweep
from .pgbench import pgbench_debits
from .setup import LEDGER_ENTRIES, USERS, BenchDatabase
from .startup import cli_startup, print_startup

CLIENTS = (1, 16, 64)
MIXES = ((USERS, "10k random"), (1, "1 hot"))
ONLY = ("lots", "http", "library", "reads", "billing")  # BENCH_ONLY: the rows run alone


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
    cpu_us: float | None = None  # the server's CPU time per request, all its processes
    machine_us: float | None = None  # the whole machine's busy CPU per request


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "10"))
    workers = worker_counts(os.environ.get("BENCH_WORKERS", "1"))
    profile = os.environ.get("BENCH_PROFILE") or None
    only = os.environ.get("BENCH_ONLY", "")
    if only not in ("", *ONLY):
        raise SystemExit(
            f"error: BENCH_ONLY={only!r}: unknown, use one of {', '.join(ONLY)} or leave it unset"
        )
    if only in ("", "http", "reads") and shutil.which("wrk") is None:
        # Found out now, not after the minutes of the rows before the first wrk run.
        raise SystemExit("error: wrk is not installed; apt-get install wrk (nox -s bench does)")
    started = time.monotonic()
    startup = None if only else cli_startup()
    rows: list[Row] = []
    imported: ImportResult | None = None
    with BenchDatabase.start() as db:
        if only == "http":
            db.prepare(USERS)
            limits = pgbench_rows(db, rows, seconds)
            server_rows(db, rows, seconds, workers, limits, profile)
            print_table(rows, seconds, workers, time.monotonic() - started)
            return
        if only == "reads":
            db.prepare(USERS)
            key = SigningKey.generate()
            with load.jwks_endpoint(key) as issuer:
                reads(db, rows, seconds, workers[0], key, issuer)
            print_table(rows, seconds, workers, time.monotonic() - started)
            return
        if only == "billing":
            db.prepare(0)  # the schema alone: the billing run seeds its own users
            billing_row(db, rows)
            print_table(rows, seconds, workers, time.monotonic() - started)
            return
        if only == "library":
            db.prepare(USERS)
            library_rows(db, rows, seconds, pgbench_rows(db, rows, seconds))
            print_table(rows, seconds, workers, time.monotonic() - started)
            return
        if only:
            db.prepare(0)  # the schema alone: the lot rows seed their own users
        else:
            imported = debit_rows(db, rows, seconds, workers, profile)
        debits, sweep = lot_rows(db, rows, seconds)
    print_table(rows, seconds, workers, time.monotonic() - started)
    if startup is not None:
        print_startup(startup)
    if imported is not None:
        print(
            f"legacy import: {imported.entries:,} ledger entries for {imported.users:,} users,"
            f" {imported.rows:,} rows written in {imported.seconds:.1f} s (whole command);"
            " x row 1 there is the ratio to PostgreSQL's raw copy of the same entries"
        )
    print(
        f"debits with lots: {debits.users:,} users with 1 lot, {debits.users:,} with"
        f" {debits.lots} lots, {debits.clients} clients; x row 1 there is the ratio to the"
        f" 1-lot figure: {debits.many_lots / debits.one_lot:.2f}"
    )
    w = debits.writes
    print(
        f"writes per debit, 1-lot group: {w.wal_bytes:,.0f} WAL bytes in {w.wal_records:.1f}"
        f" records; lot updates in place (HOT): {w.hot_share:.0%}"
    )
    print(
        f"expiry sweep: {sweep.lots:,} lots of {sweep.users:,} users expired in"
        f" {sweep.seconds:.1f} s ({sweep.lots_per_second:,.0f} lots/s)"
    )


def worker_counts(text: str) -> list[int]:
    """BENCH_WORKERS: one server worker count, or several separated by commas."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or any(n < 1 for n in counts):
        raise SystemExit(f"error: BENCH_WORKERS={text!r}: not a count, use e.g. 1 or 1,2,4")
    return counts


Limits = dict[tuple[int, int], float]


def pgbench_rows(db: BenchDatabase, rows: list[Row], seconds: float) -> Limits:
    """Row 1; returns pgbench's rate by (users, clients), the other rows' reference."""
    limits: Limits = {}
    for users, mix in MIXES:
        for clients in CLIENTS:
            bench = pgbench_debits(db, clients, users, seconds)
            tps = bench.tps
            limits[(users, clients)] = tps
            what = "pgbench: one debit's SQL"
            latency = (bench.p50_ms, bench.p99_ms, 0)
            machine = bench.machine_cpu_us
            rows.append(Row(1, what, mix, clients, tps, tps, *latency, machine_us=machine))
            progress(rows[-1])
    return limits


def library_rows(db: BenchDatabase, rows: list[Row], seconds: float, limits: Limits) -> None:
    """Row 2: the library in-process, against row 1's `limits`."""
    for users, mix in MIXES:
        for clients in CLIENTS:
            rate = asyncio.run(library_debits(db.url, clients, users, seconds))
            rows.append(Row(2, "library in-process", mix, clients, rate, limits[(users, clients)]))
            progress(rows[-1])


def server_rows(
    db: BenchDatabase,
    rows: list[Row],
    seconds: float,
    workers: list[int],
    limits: Limits,
    profile: str | None,
    issuer: str | None = None,
) -> None:
    """Row 3 once per worker count, each server started afresh; `issuer`: the JWKS
    endpoint's URL (one of its own when not given)."""
    if issuer is None:
        with load.jwks_endpoint(SigningKey.generate()) as own:
            server_rows(db, rows, seconds, workers, limits, profile, own)
        return
    for count in workers:
        with load.server(db, issuer, count) as server:
            debit_row3(server, rows, seconds, count, limits, profile)
        profile = None  # the first worker count's run only


def debit_row3(
    server: load.Server,
    rows: list[Row],
    seconds: float,
    workers: int,
    limits: Limits,
    profile: str | None,
) -> None:
    what = "HTTP POST internal/credits/use"
    if workers > 1:
        what = f"HTTP internal/credits/use, {workers} w"
    for users, mix in MIXES:
        for clients in CLIENTS:
            record = profile if (users, clients) == (USERS, 64) else None
            result = load.wrk(server, load.debit_script(users), clients, seconds, record)
            limit = limits[(users, clients)]
            rows.append(http_row(3, what, mix, clients, result, limit))
            progress(rows[-1])


def debit_rows(
    db: BenchDatabase, rows: list[Row], seconds: float, workers: list[int], profile: str | None
) -> ImportResult:
    """Rows 1 to 7 (all but the CLI's start); returns the legacy import's result."""
    import_entries = int(os.environ.get("BENCH_IMPORT_ENTRIES", "1000000"))
    import_users = int(os.environ.get("BENCH_IMPORT_USERS", "100000"))
    db.prepare(USERS)
    limits = pgbench_rows(db, rows, seconds)
    library_rows(db, rows, seconds, limits)
    key = SigningKey.generate()
    with load.jwks_endpoint(key) as issuer:
        server_rows(db, rows, seconds, workers, limits, profile, issuer)
        reads(db, rows, seconds, workers[0], key, issuer)
    billing_row(db, rows)
    imported = legacy_import(db, import_users, import_entries)
    what = "legacy import (rows written)"
    mix = f"{imported.entries:,} entries"
    rate = imported.rows / imported.seconds
    rows.append(Row(7, what, mix, 1, rate, imported.reference_rows_per_second))
    progress(rows[-1])
    return imported


def billing_row(db: BenchDatabase, rows: list[Row]) -> None:
    """Row 5: the billing run over BENCH_SUBSCRIPTIONS (100,000) due subscriptions."""
    subscriptions = int(os.environ.get("BENCH_SUBSCRIPTIONS", "100000"))
    charged, elapsed = asyncio.run(billing_run(db.url, subscriptions))
    rows.append(Row(5, "billing run (subscriptions)", f"{charged:,} due", 1, charged / elapsed))
    progress(rows[-1])


def reads(
    db: BenchDatabase, rows: list[Row], seconds: float, workers: int, key: SigningKey, issuer: str
) -> None:
    """Row 4: balance and history reads once the ledger holds BENCH_LEDGER_ENTRIES
    entries (LEDGER_ENTRIES by default)."""
    db.fill_ledger(int(os.environ.get("BENCH_LEDGER_ENTRIES", LEDGER_ENTRIES)), USERS)
    entries = db.count("credits.transactions")
    tokens = load.reader_tokens(key, issuer)
    with load.server(db, issuer, workers) as server:
        for path, what in (
            (load.READ_PATHS["balance"], "HTTP GET credits/balance"),
            (load.READ_PATHS["history"], "HTTP GET credits/transactions"),
        ):
            for clients in CLIENTS:
                result = load.wrk(server, load.read_script(path, tokens), clients, seconds)
                rows.append(http_row(4, what, f"{entries:,} entries", clients, result, None))
                progress(rows[-1])


def lot_rows(db: BenchDatabase, rows: list[Row], seconds: float) -> tuple[DebitsWithLots, Sweep]:
    """Rows 8 (debits for users holding 1 lot vs 20 lots) and 9 (the expiry sweep)."""
    users = int(os.environ.get("BENCH_LOT_USERS", "10000"))
    clients = int(os.environ.get("BENCH_LOT_CLIENTS", "16"))
    sweep_users = int(os.environ.get("BENCH_SWEEP_USERS", "20000"))
    sweep_lots = int(os.environ.get("BENCH_SWEEP_LOTS", "5"))
    debits = debits_with_lots(db, users, clients, seconds)
    mix = f"{users:,} random"
    rows.append(Row(8, "library debits, 1 lot each", mix, clients, debits.one_lot, debits.one_lot))
    progress(rows[-1])
    what = f"library debits, {debits.lots} lots each"
    rows.append(Row(8, what, mix, clients, debits.many_lots, debits.one_lot))
    progress(rows[-1])
    sweep = expiry_sweep(db, sweep_users, sweep_lots)
    what = "expiry sweep (lots)"
    rows.append(Row(9, what, f"{sweep.lots:,} due", 1, sweep.lots_per_second))
    progress(rows[-1])
    return debits, sweep


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
        result.cpu_us_per_request,
        result.machine_cpu_us,
    )


def progress(row: Row) -> None:
    print(
        f"  row {row.row}: {row.what}, {row.users}, {row.clients} clients: {row.per_second:,.0f}/s",
        flush=True,
    )


def print_table(rows: list[Row], seconds: float, workers: list[int], total: float) -> None:
    def optional(value: float | None, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    header = (
        f"{'row':>3}  {'what':<32} {'users':<20} {'clients':>7} {'per second':>11} "
        f"{'x row 1':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'RSS MB':>7} "
        f"{'CPU µs':>7} {'all µs':>7}"
    )
    print()
    print(
        f"PostgreSQL with fsync and synchronous_commit on; {seconds:g} s per run; "
        f"server workers: {','.join(map(str, workers))}; whole run {total:.0f} s"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = "" if r.limit is None else f"{r.per_second / r.limit:.2f}"
        print(
            f"{r.row:>3}  {r.what:<32} {r.users:<20} {r.clients:>7} {r.per_second:>11,.0f} "
            f"{ratio:>8} {optional(r.p50_ms, '.2f'):>7} {optional(r.p99_ms, '.2f'):>7} "
            f"{optional(r.errors, 'd'):>6} {optional(r.rss_mb, '.0f'):>7} "
            f"{optional(r.cpu_us, '.0f'):>7} {optional(r.machine_us, '.0f'):>7}"
        )


if __name__ == "__main__":
    main()
