"""The benchmark's own PostgreSQL: durable settings, the schema, seeded users."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import sqlalchemy as sa

from mana_credits_adapters.sql import migrate
from mana_credits_adapters.sql.store import create_engine
from mana_credits_core.lots import DEFAULT_PRIORITY

sys.path.insert(0, os.getcwd())
from tests.postgres import DATABASE, PostgresCluster, free_port
from tests.processes import kill_group, popen, run

__all__ = [
    "LEDGER_ENTRIES",
    "USERS",
    "BenchDatabase",
    "free_port",
    "kill_group",
    "popen",
    "run",
    "user",
]

FUNDS = 10**12  # no debit in the benchmark is ever refused for lack of credits
USERS = 10_000  # funded users, user-1 .. user-10000
LEDGER_ENTRIES = 1_000_000  # row 4's ledger, unless BENCH_LEDGER_ENTRIES says otherwise


def user(n: int) -> str:
    return f"user-{n}"


@dataclass
class BenchDatabase:
    """A PostgreSQL cluster with `fsync` and `synchronous_commit` on, as installed."""

    cluster: PostgresCluster

    @property
    def name(self) -> str:
        return DATABASE

    @property
    def url(self) -> str:
        return self.cluster.url

    @classmethod
    def start(cls) -> BenchDatabase:
        cluster = PostgresCluster(durable=True)
        try:
            cluster.start()
        except BaseException:
            cluster.stop()
            raise
        return cls(cluster)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.cluster.stop()

    def sql(self, statement: str) -> str:
        """Run SQL through psql (bulk seeding is the database's own work); what it
        printed, unaligned, without headers (a query's rows, `|` between values)."""
        command = [
            str(self.cluster.bindir / "psql"),
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.cluster.port),
            "-U",
            self.cluster.user,
            "-d",
            self.name,
            "-A",
            "-t",
            "-c",
            statement,
        ]
        done = run(command, check=True, capture_output=True, text=True, timeout=600)
        return str(done.stdout).strip()

    def prepare(self, users: int) -> None:
        """The schema and `users` funded balances named user-1 .. user-N."""

        async def schema() -> None:
            engine = create_engine(self.url, pool_size=1)
            try:
                await migrate.upgrade(engine)
            finally:
                await engine.dispose()

        asyncio.run(schema())
        self.sql(
            "INSERT INTO credits.balances (user_id, balance, total_earned, total_spent,"
            " created_at, updated_at)"
            f" SELECT 'user-' || n, {FUNDS}, {FUNDS}, 0, now(), now()"
            f" FROM generate_series(1, {users}) n ON CONFLICT DO NOTHING"
        )
        # Each funded balance's credits in one lot, as an upgraded database has them.
        self.sql(
            "INSERT INTO credits.credit_lots (id, user_id, source, amount, remaining, held,"
            " priority, created_at)"
            f" SELECT gen_random_uuid()::text, 'user-' || n, 'opening', {FUNDS}, {FUNDS}, 0,"
            f" {DEFAULT_PRIORITY}, now() FROM generate_series(1, {users}) n"
            " WHERE NOT EXISTS (SELECT 1 FROM credits.credit_lots l"
            " WHERE l.user_id = 'user-' || n)"
        )

    def fill_ledger(self, entries: int, users: int) -> None:
        """`entries` ledger rows spread over the users, for the read benchmark."""
        self.sql(
            "INSERT INTO credits.transactions (id, user_id, type, status, amount,"
            " balance_before, balance_after, app_id, description, created_at, completed_at)"
            f" SELECT gen_random_uuid()::text, 'user-' || (1 + n % {users}), 'usage',"
            " 'completed', -1, 0, 0, 'bench', 'seeded',"
            " now() - n * interval '1 second', now() - n * interval '1 second'"
            f" FROM generate_series(1, {entries}) n"
        )
        self.sql("VACUUM ANALYZE credits.transactions")

    def count(self, table: str) -> int:
        async def run() -> int:
            engine = create_engine(self.url, pool_size=1)
            try:
                async with engine.connect() as connection:
                    found = await connection.scalar(sa.text(f"SELECT count(*) FROM {table}"))
                    return int(found or 0)
            finally:
                await engine.dispose()

        return asyncio.run(run())
