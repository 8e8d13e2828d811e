"""The legacy import at scale: an old database of 1,000,000 ledger entries for 100,000
users, imported by `mana-credits db import-legacy`, against the database's own copy.

The reference is PostgreSQL copying the same old `transactions` rows from the old
database into a table of the same shape in the new one (`COPY ... TO STDOUT` piped
into `COPY ... FROM STDIN`, binary, no transformation): the floor for moving rows
between two databases. The import's rate counts every row it writes, in every table.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

sys.path.insert(0, os.getcwd())
from tests.legacy.fixture import conninfo, create_legacy_database, database_url, fill_bulk

from .setup import BenchDatabase, run


@dataclass(frozen=True)
class ImportResult:
    entries: int  # old ledger entries
    users: int
    rows: int  # rows the import wrote, all tables
    seconds: float  # the whole command, start to exit
    reference_rows_per_second: float  # the database's own copy of the entries


def legacy_import(db: BenchDatabase, users: int, entries: int) -> ImportResult:
    """Fill an old database, copy its entries raw (the reference), then import it."""
    old = create_legacy_database(db.url, "bench_legacy")
    fill_bulk(old, users=users, entries=entries)
    new = _fresh_database(db.url, "bench_imported")
    reference = _raw_copy(old, new)
    command = [sys.executable, "-m", "mana_credits_cli"]
    env = {**os.environ, "DATABASE_URL": new, "HOME": os.environ.get("HOME", "/tmp")}
    run([*command, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=600)
    started = time.perf_counter()
    done = run(
        [*command, "db", "import-legacy", "--from", old, "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    seconds = time.perf_counter() - started
    report = json.loads(done.stdout)
    written = sum(int(t["written"]) for t in report["tables"])
    return ImportResult(entries, users, written, seconds, reference)


def _fresh_database(base_url: str, name: str) -> str:
    with psycopg.connect(conninfo(base_url), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(base_url, name)


def _raw_copy(old: str, new: str) -> float:
    """Rows per second of PostgreSQL copying the old entries as they are."""
    with psycopg.connect(conninfo(old)) as source, psycopg.connect(conninfo(new)) as target:
        target.execute(
            "CREATE TABLE raw_copy (id uuid PRIMARY KEY, user_id text, type text, status text,"
            " amount integer, balance_before integer, balance_after integer, app_id text,"
            " description text, metadata jsonb, idempotency_key text UNIQUE,"
            " created_at timestamptz, completed_at timestamptz)"
        )
        started = time.perf_counter()
        rows = 0
        with (
            source.cursor().copy(
                "COPY (SELECT id, user_id, type::text, status::text, amount, balance_before,"
                " balance_after, app_id, description, metadata, idempotency_key, created_at,"
                " completed_at FROM credits.transactions) TO STDOUT (FORMAT BINARY)"
            ) as out,
            target.cursor().copy("COPY raw_copy FROM STDIN (FORMAT BINARY)") as into,
        ):
            for block in out:
                into.write(block)
        target.commit()
        seconds = time.perf_counter() - started
        rows = int(target.execute("SELECT count(*) FROM raw_copy").fetchone()[0])  # type: ignore[index]
        target.execute("DROP TABLE raw_copy")
        target.commit()
    return rows / seconds
