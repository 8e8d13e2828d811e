"""Two server configurations taking turns on one database: `python -m bench.ab A B`.

Figures on a shared machine drift from run to run (checkpoints, autovacuum, other work),
often by more than a change under test moves them, so a before/after pair is only
worth comparing when both were measured in the same sitting, in alternating order. Each
side is a checkout to serve (a directory) and/or settings (`NAME=value`), separated by
spaces; a side without a directory serves this checkout:

    python -m bench.ab . ../other-checkout
    python -m bench.ab . "MANA_CREDITS_DEBIT_BATCH_WAIT_MS=1"

It starts its own PostgreSQL (as `python -m bench` does), seeds 10,000 funded users and
runs one load under wrk once per side and round, the order reversed every round, after a
one-second warm-up. BENCH_LOAD picks it: `debits` (row 3's
`POST /api/v1/internal/credits/use`, the default), `balance` or `history` (row 4's reads,
by 1,000 users with bearer tokens, over BENCH_LEDGER_ENTRIES ledger entries, 1,000,000 by
default). BENCH_ROUNDS (4), BENCH_CLIENTS (64), BENCH_SECONDS (5), BENCH_WORKERS (1) and
BENCH_USERS (debits only: 10,000, or 1 for one hot user) set the rest. It prints every
run, then each side's means and its throughput as a ratio of side A's.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mana_credits_adapters.identity.dev import SigningKey

from . import load
from .setup import LEDGER_ENTRIES, USERS, BenchDatabase


@dataclass
class Side:
    """One configuration: the checkout served (None: this one) and settings on top."""

    label: str
    code: Path | None
    settings: dict[str, str]
    runs: list[load.LoadResult] = field(default_factory=list)


def parse_side(text: str) -> Side:
    """A side from its argument. Raises SystemExit naming what is wrong."""
    code: Path | None = None
    settings: dict[str, str] = {}
    for token in text.split():
        name, equals, value = token.partition("=")
        if equals:
            if not name:
                raise SystemExit(f"error: {token!r}: a setting is NAME=value")
            settings[name] = value
            continue
        if code is not None:
            raise SystemExit(f"error: {text!r}: one checkout per side")
        code = Path(token).resolve()
        if not (code / "mana_credits_cli").is_dir():
            raise SystemExit(f"error: {token!r} is not a mana-credits checkout")
    return Side(text.strip() or ".", code, settings)


def count(name: str, default: int) -> int:
    text = os.environ.get(name, str(default))
    if not text.isdigit() or int(text) < 1:
        raise SystemExit(f"error: {name}={text!r}: not a positive whole number")
    return int(text)


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m bench.ab SIDE_A SIDE_B (see the module's help)")
    sides = [parse_side(sys.argv[1]), parse_side(sys.argv[2])]
    rounds = count("BENCH_ROUNDS", 4)
    clients = count("BENCH_CLIENTS", 64)
    workers = count("BENCH_WORKERS", 1)
    users = count("BENCH_USERS", USERS)
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    kind = os.environ.get("BENCH_LOAD", "debits")
    if kind != "debits" and kind not in load.READ_PATHS:
        raise SystemExit(f"error: BENCH_LOAD={kind!r}: use debits, balance or history")
    with BenchDatabase.start() as db:
        db.prepare(USERS)
        key = SigningKey.load_or_create(Path(tempfile.mkdtemp()))
        with load.jwks_endpoint(key) as issuer:
            reads = ""
            if kind != "debits":
                db.fill_ledger(count("BENCH_LEDGER_ENTRIES", LEDGER_ENTRIES), USERS)
                reads = load.read_script(load.READ_PATHS[kind], load.reader_tokens(key, issuer))

            def script() -> str:
                # Every run of debits its own idempotency keys: a key sent again is a replay.
                return reads or load.debit_script(users)

            for round_ in range(rounds):
                for side in sides if round_ % 2 == 0 else sides[::-1]:
                    serving = load.server(
                        db, issuer, workers, code=side.code, settings=side.settings
                    )
                    with serving as target:
                        load.wrk(target, script(), clients, 1)
                        result = load.wrk(target, script(), clients, seconds)
                    side.runs.append(result)
                    print(f"round {round_ + 1}  {side.label:30.30}  {line(result)}", flush=True)
    print(f"\n{kind}: {rounds} rounds, {clients} clients, {workers} worker(s), "
          f"{seconds:g} s a run; means:")  # fmt: skip
    first = statistics.mean(r.requests_per_second for r in sides[0].runs)
    for side in sides:
        rate = statistics.mean(r.requests_per_second for r in side.runs)
        print(
            f"  {side.label:30.30}  {rate:8,.0f}/s  {rate / first:5.2f} x A"
            f"  p99 {statistics.mean(r.p99_ms for r in side.runs):6.1f} ms"
            f"  server CPU {statistics.mean(r.cpu_us_per_request for r in side.runs):4.0f} µs"
            f"  all {statistics.mean(r.machine_cpu_us for r in side.runs):4.0f} µs"
        )


def line(result: load.LoadResult) -> str:
    return (
        f"{result.requests_per_second:8,.0f}/s  p50 {result.p50_ms:5.1f}  "
        f"p99 {result.p99_ms:6.1f} ms  errors {result.errors}  "
        f"server CPU {result.cpu_us_per_request:4.0f} µs  all {result.machine_cpu_us:4.0f} µs"
    )


if __name__ == "__main__":
    main()
