"""Faults: the server killed with SIGKILL in the middle of a debit storm on PostgreSQL.

Every debit carries its own idempotency key. After the kill the server is started again
and every debit whose answer was lost is retried with its key until it gets one.
Then: every acknowledged debit is in the ledger exactly once, no key has two entries,
the balance is the funds minus exactly the applied debits, and reconcile finds no
drift. `nox -s faults` repeats the storm with more rounds and debits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core.services import ReconcileService

from ..postgres import free_port

pytestmark = pytest.mark.postgres

KEY = "faults-service-key"
ROUNDS = int(os.environ.get("MANA_CREDITS_FAULT_ROUNDS", "2"))
DEBITS = int(os.environ.get("MANA_CREDITS_FAULT_DEBITS", "1000"))
FUNDS = 1_000_000


@asynccontextmanager
async def serving(url: str, home: Path, port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MANA_CREDITS_HOME": str(home),
        "MANA_SERVICE_KEY": KEY,
        "MANA_AUTH_URL": "http://127.0.0.1:9",
        "STRIPE_SECRET_KEY": "sk_test_faults",
        "STRIPE_WEBHOOK_SECRET": "whsec_faults",
        "MANA_CREDITS_BILLING_ENABLED": "false",
        "LOG_LEVEL": "ERROR",
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mana_credits_cli", "serve", "--port", str(port), env=env
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(400):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        yield server
    finally:
        if server.returncode is None:
            server.kill()
        await server.wait()


def answered(storm: Sequence[asyncio.Future[int | None]], count: int) -> asyncio.Event:
    """An event set once `count` of the storm's requests have their answer."""
    event, done = asyncio.Event(), 0

    def one(_future: asyncio.Future[int | None]) -> None:
        nonlocal done
        done += 1
        if done >= count:
            event.set()

    for future in storm:
        future.add_done_callback(one)
    return event


async def debit(http: aiohttp.ClientSession, base: str, user: str, key: str) -> int | None:
    """The answer's status, or None when the answer was lost."""
    body = {"userId": user, "amount": 3, "appId": "chat", "description": "storm",
            "idempotencyKey": key}  # fmt: skip
    try:
        async with http.post(
            base + "/api/v1/internal/credits/use", json=body, headers={"X-Service-Key": KEY}
        ) as response:
            await response.read()
            return response.status
    except (TimeoutError, aiohttp.ClientError):
        return None


async def test_sigkill_mid_storm_loses_nothing_and_applies_nothing_twice(
    pg_url: str, clean_pg_store: SqlStore, tmp_path: Path
) -> None:
    users = [f"storm-{n}" for n in range(20)]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    keys = {f"k{r}-{n}": users[n % len(users)] for r in range(ROUNDS) for n in range(DEBITS)}
    answers: dict[str, int | None] = {}
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with serving(pg_url, tmp_path, port):
            for user in users:
                grant = {"userId": user, "amount": FUNDS, "description": "funds"}
                async with http.post(
                    base + "/api/v1/internal/credits/refund",
                    json=grant,
                    headers={"X-Service-Key": KEY},
                ) as response:
                    assert response.status == 200
        for r in range(ROUNDS):
            round_keys = [k for k in keys if k.startswith(f"k{r}-")]
            async with serving(pg_url, tmp_path, port) as server:
                storm = [asyncio.ensure_future(debit(http, base, keys[k], k)) for k in round_keys]
                await answered(storm, len(storm) // 4).wait()  # a quarter is through
                server.send_signal(signal.SIGKILL)
                for key, status in zip(round_keys, await asyncio.gather(*storm), strict=True):
                    answers[key] = status
        assert set(answers.values()) <= {200, None}, "an answer is a success or nothing"
        lost = [k for k, status in answers.items() if status is None]
        acknowledged = {k for k, status in answers.items() if status == 200}
        assert lost, "the kill should have cut some answers off"
        assert acknowledged, "some debits should have been answered before the kill"
        async with serving(pg_url, tmp_path, port):
            for key in lost:
                status = await debit(http, base, keys[key], key)
                assert status == 200, (key, status)
                answers[key] = status

    async with clean_pg_store.engine.connect() as connection:
        rows = (
            await connection.execute(
                sa.text(
                    "SELECT idempotency_key, count(*) AS n FROM credits.transactions"
                    " WHERE idempotency_key LIKE 'k%' GROUP BY idempotency_key"
                )
            )
        ).all()
        found = await connection.execute(sa.text("SELECT user_id, balance FROM credits.balances"))
        balances: dict[str, int] = {row.user_id: row.balance for row in found}
    per_key = {row.idempotency_key: row.n for row in rows}
    assert set(per_key) == set(keys), "every debit is in the ledger once retried"
    assert max(per_key.values()) == 1, "no key applied twice"
    for user in users:
        applied = sum(1 for u in keys.values() if u == user)
        assert balances[user] == FUNDS - 3 * applied
    assert (await ReconcileService(clean_pg_store).run()).ok
