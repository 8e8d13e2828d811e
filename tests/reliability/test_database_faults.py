"""Faults of PostgreSQL under load: connections killed, the database crashed and restarted.

The server runs as a child process on a durable cluster of this module's own (a crash
of the shared test cluster would take the other tests' connections with it). While a
storm of keyed debits and balance reads runs:

- `pg_terminate_backend` kills every connection of the server, again and again;
- `pg_ctl restart -m immediate` crashes PostgreSQL and brings it back.

Every answer is a 200 or a clean 503 (the error envelope, nothing of the internals), the
server recovers without being restarted, every failed debit retried with its key is
applied once, balances are exact and reconcile finds no drift.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psycopg
import pytest
import sqlalchemy as sa

from mana_credits_adapters.sql import migrate
from mana_credits_adapters.sql.store import SqlStore, create_engine

from ..conftest import own_cluster
from ..postgres import PostgresCluster, free_port
from .server import (
    Answer,
    answered,
    assert_no_drift,
    debit,
    fund,
    retry_until_applied,
    send,
    serving,
)

pytestmark = pytest.mark.postgres

FUNDS = 100_000
USERS = [f"crash-{n}" for n in range(20)]
DEBITS = 1000
LEAKS = ("psycopg", "sqlalchemy", "Traceback", "SELECT", "connection")


@pytest.fixture(scope="module")
def crashable() -> Iterator[PostgresCluster]:
    yield from own_cluster(durable=True)  # a crash must not lose acknowledged commits


@pytest.fixture
async def database(crashable: PostgresCluster) -> str:
    """The cluster's database with a fresh schema; its URL."""
    engine = create_engine(crashable.url)
    async with engine.begin() as connection:
        for schema in ("credits", "gifts"):
            await connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    await migrate.upgrade(engine)
    await engine.dispose()
    return crashable.url


def conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


async def terminate_backends(url: str) -> int:
    """Kill every other client connection to the database; how many there were."""
    async with await psycopg.AsyncConnection.connect(conninfo(url), autocommit=True) as own:
        cursor = await own.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


def storm(
    http: aiohttp.ClientSession, base: str, keys: dict[str, str]
) -> tuple[list[asyncio.Future[Answer]], list[asyncio.Future[Answer]]]:
    """Keyed debits, and a balance read beside every fifth of them (in the same queue)."""
    debits: list[asyncio.Future[Answer]] = []
    reads: list[asyncio.Future[Answer]] = []
    for n, (key, user) in enumerate(keys.items()):
        debits.append(asyncio.ensure_future(debit(http, base, user, key)))
        if n % 5 == 0:
            path = f"/api/v1/internal/credits/balance/{user}"
            reads.append(asyncio.ensure_future(send(http, base + path)))
    return debits, reads


def assert_clean(answers: list[Answer]) -> int:
    """Every answer is a 200 or a 503 in the error envelope; the number of 503s."""
    assert {a.status for a in answers} <= {200, 503}, {a.status for a in answers}
    unavailable = [a for a in answers if a.status == 503]
    for answer in unavailable:
        body = json.loads(answer.body)
        assert body["statusCode"] == 503, body
        assert not any(leak in answer.body.decode() for leak in LEAKS), body
    return len(unavailable)


async def assert_no_drift_in(url: str, keys: dict[str, str]) -> None:
    """The ledger checks on a fresh store: the server's crash took the old connections."""
    store = SqlStore(create_engine(url))
    try:
        await assert_no_drift(store, keys, FUNDS)
    finally:
        await store.close()


async def test_connections_killed_under_load(database: str, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    keys = {f"x-{n}": USERS[n % len(USERS)] for n in range(DEBITS)}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        serving(database, tmp_path, port) as server,
    ):
        await fund(http, base, USERS, FUNDS)
        debits, reads = storm(http, base, keys)
        killed = 0
        while not all(future.done() for future in debits + reads):
            killed += await terminate_backends(database)
            await asyncio.sleep(0.02)
        answers = dict(zip(keys, [f.result() for f in debits], strict=True))
        unavailable = assert_clean([*answers.values(), *(f.result() for f in reads)])
        assert killed > 0
        assert unavailable > 0, "killed connections answer 503"
        failed = [key for key, answer in answers.items() if answer.status != 200]
        await retry_until_applied(http, base, keys, failed, attempts=100)
        assert server.returncode is None, "recovered without a restart"
    await assert_no_drift_in(database, keys)


async def test_database_crash_and_restart_under_load(
    database: str, crashable: PostgresCluster, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    keys = {f"c-{n}": USERS[n % len(USERS)] for n in range(DEBITS)}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        serving(database, tmp_path, port) as server,
    ):
        await fund(http, base, USERS, FUNDS)
        debits, reads = storm(http, base, keys)
        await answered(debits, len(debits) // 4).wait()
        await asyncio.to_thread(crashable.restart_immediately)
        answers = dict(zip(keys, await asyncio.gather(*debits), strict=True))
        unavailable = assert_clean([*answers.values(), *await asyncio.gather(*reads)])
        assert unavailable > 0, "requests while the database is down are 503"
        failed = [key for key, answer in answers.items() if answer.status != 200]
        await retry_until_applied(http, base, keys, failed, attempts=100)
        # The reads' own pool keeps its idle connections until one of them fails: when
        # every read of the storm was answered before the crash, the first read after
        # it is that one 503 (tests/adapters/test_driver_reads.py::
        # test_after_a_crash_at_most_one_read_fails); the next one is answered.
        balance = base + f"/api/v1/internal/credits/balance/{USERS[0]}"
        after = [await send(http, balance) for _ in range(2)]
        assert [a.status for a in after] in ([200, 200], [503, 200]), after
        assert server.returncode is None, "recovered without a restart"
    await assert_no_drift_in(database, keys)


async def test_an_exhausted_pool_answers_503_without_waiting_for_the_database(
    database: str, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    refund = base + "/api/v1/internal/credits/refund"
    user = USERS[0]

    def grant(key: str) -> dict[str, object]:
        return {"userId": user, "amount": 5, "description": "grant", "idempotencyKey": key}

    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        serving(
            database,
            tmp_path,
            port,
            MANA_CREDITS_DB_POOL_SIZE="1",
            MANA_CREDITS_DB_MAX_OVERFLOW="0",
            MANA_CREDITS_DB_POOL_TIMEOUT="0.5",
        ),
    ):
        await fund(http, base, [user], FUNDS)
        async with await psycopg.AsyncConnection.connect(conninfo(database)) as blocker:
            await blocker.execute("LOCK TABLE credits.balances IN ACCESS EXCLUSIVE MODE")
            # This one takes the pool's only connection and waits on the lock.
            held = asyncio.ensure_future(send(http, refund, grant("held")))
            await asyncio.sleep(0.3)
            started = asyncio.get_running_loop().time()
            queued = await asyncio.gather(*(send(http, refund, grant(f"q{n}")) for n in range(20)))
            waited = asyncio.get_running_loop().time() - started
            assert_clean(list(queued))
            assert {a.status for a in queued} == {503}
            assert waited < 10, "a 503 after the pool timeout, not after the lock"
            assert not held.done()
            await blocker.rollback()
        assert (await held).status == 200
        assert (await send(http, refund, grant("after"))).status == 200
        answer = await send(http, base + f"/api/v1/internal/credits/balance/{user}")
        assert json.loads(answer.body)["balance"] == FUNDS + 10, "only the two answered 200"
