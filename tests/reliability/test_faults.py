"""Faults of the server process and of the auth service, under load, on PostgreSQL.

- SIGKILL in the middle of a debit storm: the server is started again and every debit
  whose answer was lost is retried with its key. Every acknowledged debit is in the
  ledger exactly once, no key has two entries, balances are exact, no drift.
- SIGTERM in the middle of a storm: requests already taken are answered, the server
  exits cleanly, and the same ledger checks hold.
- The JWKS endpoint down under load: tokens signed with the cached keys keep working.

`nox -s faults` repeats the SIGKILL storm with more rounds and debits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from mana_credits_adapters.identity.dev import SigningKey
from mana_credits_adapters.sql.store import SqlStore

from ..postgres import free_port
from .server import (
    Answer,
    AuthService,
    answered,
    assert_no_drift,
    debit_storm,
    fund,
    retry_until_applied,
    serving,
)

pytestmark = pytest.mark.postgres

ROUNDS = int(os.environ.get("MANA_CREDITS_FAULT_ROUNDS", "2"))
DEBITS = int(os.environ.get("MANA_CREDITS_FAULT_DEBITS", "1000"))
FUNDS = 1_000_000
USERS = [f"storm-{n}" for n in range(20)]


async def test_sigkill_mid_storm_loses_nothing_and_applies_nothing_twice(
    pg_url: str, clean_pg_store: SqlStore, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    keys = {f"k{r}-{n}": USERS[n % len(USERS)] for r in range(ROUNDS) for n in range(DEBITS)}
    answers: dict[str, int | None] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        async with serving(pg_url, tmp_path, port):
            await fund(http, base, USERS, FUNDS)
        for r in range(ROUNDS):
            round_keys = [k for k in keys if k.startswith(f"k{r}-")]
            async with serving(pg_url, tmp_path, port) as server:
                storm = debit_storm(http, base, {k: keys[k] for k in round_keys})
                await answered(storm, len(storm) // 4).wait()  # a quarter is through
                server.send_signal(signal.SIGKILL)
                for key, answer in zip(round_keys, await asyncio.gather(*storm), strict=True):
                    answers[key] = answer.status
        assert set(answers.values()) <= {200, None}, "an answer is a success or nothing"
        lost = [k for k, status in answers.items() if status is None]
        assert lost, "the kill should have cut some answers off"
        assert any(status == 200 for status in answers.values()), "some were answered first"
        async with serving(pg_url, tmp_path, port):
            await retry_until_applied(http, base, keys, lost)

    await assert_no_drift(clean_pg_store, keys, FUNDS)


async def test_sigterm_answers_what_it_took_then_exits_cleanly(
    pg_url: str, clean_pg_store: SqlStore, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    keys = {f"t-{n}": USERS[n % len(USERS)] for n in range(DEBITS)}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        async with serving(pg_url, tmp_path, port) as server:
            await fund(http, base, USERS, FUNDS)
            storm = debit_storm(http, base, keys)
            await answered(storm, len(storm) // 4).wait()
            server.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            answers = dict(zip(keys, await asyncio.gather(*storm), strict=True))
            exit_code = await asyncio.wait_for(server.wait(), timeout=15)
        assert exit_code == 0, "SIGTERM is a clean shutdown"
        statuses = {answer.status for answer in answers.values()}
        assert statuses <= {200, None}, statuses
        late = [a for a in answers.values() if a.status == 200 and a.at > signalled]
        assert late, "requests in flight at SIGTERM are answered, not cut"
        lost = [k for k, answer in answers.items() if answer.status is None]
        async with serving(pg_url, tmp_path, port):
            await retry_until_applied(http, base, keys, lost)

    await assert_no_drift(clean_pg_store, keys, FUNDS)


async def test_cached_keys_keep_working_while_jwks_is_down_under_load(
    pg_url: str, clean_pg_store: SqlStore, tmp_path: Path, auth: AuthService
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    async def balance(http: aiohttp.ClientSession, token: str) -> Answer:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with http.get(base + "/api/v1/credits/balance", headers=headers) as response:
                return Answer(response.status, await response.read(), time.monotonic())
        except (TimeoutError, aiohttp.ClientError):
            return Answer(None, b"", time.monotonic())

    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http,
        serving(pg_url, tmp_path, port, MANA_AUTH_URL=auth.url),
    ):
        assert (await balance(http, auth.token("warm-up"))).status == 200
        auth.down = True
        fetched = auth.fetches
        # Every token is new (its own subject and signature): none is a cache hit of a
        # verified token, each is verified against the cached keys.
        tokens = [auth.token(f"reader-{n}") for n in range(500)]
        answers = await asyncio.gather(*(balance(http, token) for token in tokens))
        assert {a.status for a in answers} == {200}
        assert auth.fetches == fetched, "known keys need no fetch"
        stranger = SigningKey.generate().mint("mallory", issuer=auth.url)
        assert (await balance(http, stranger)).status == 401
