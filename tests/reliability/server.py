"""`mana-credits serve` as a child process, and the debit storms the fault tests send it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer

from mana_credits_adapters.identity.dev import SigningKey
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core.services import ReconcileService

from ..processes import reap, spawn

KEY = "faults-service-key"
DEBIT = 3  # credits per storm debit
STARTUP = 120.0  # seconds a server may take to answer /health (cold imports, workers)


@asynccontextmanager
async def serving(
    url: str, home: Path, port: int, *, workers: int = 1, **env: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """The server on `port` against `url`, answering /health; killed if still running."""
    environment = {
        **os.environ,
        "DATABASE_URL": url,
        "MANA_CREDITS_HOME": str(home),
        "MANA_SERVICE_KEY": KEY,
        "MANA_AUTH_URL": "http://127.0.0.1:9",
        "STRIPE_SECRET_KEY": "sk_test_faults",
        "STRIPE_WEBHOOK_SECRET": "whsec_faults",
        "MANA_CREDITS_BILLING_ENABLED": "false",
        "LOG_LEVEL": "CRITICAL",
        **env,
    }
    server = await spawn(
        *(sys.executable, "-m", "mana_credits_cli", "serve", "--port", str(port)),
        *("--workers", str(workers)),
        env=environment,
    )
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + STARTUP
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                if server.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not come up")
                await asyncio.sleep(0.05)
        yield server
    finally:
        if server.returncode is None:
            server.terminate()  # SIGTERM: the parent of several workers stops them too
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait(), timeout=20)
        await reap(server)  # whatever is left of its group, workers included


@dataclass(frozen=True)
class Answer:
    """What a client saw: the status (None when the answer was lost), the body, when."""

    status: int | None
    body: bytes
    at: float


async def send(
    http: aiohttp.ClientSession, url: str, body: dict[str, object] | None = None
) -> Answer:
    headers = {"X-Service-Key": KEY}
    try:
        if body is None:
            async with http.get(url, headers=headers) as response:
                return Answer(response.status, await response.read(), time.monotonic())
        async with http.post(url, json=body, headers=headers) as response:
            return Answer(response.status, await response.read(), time.monotonic())
    except (TimeoutError, aiohttp.ClientError):
        return Answer(None, b"", time.monotonic())


async def debit(http: aiohttp.ClientSession, base: str, user: str, key: str) -> Answer:
    body = {"userId": user, "amount": DEBIT, "appId": "chat", "description": "storm",
            "idempotencyKey": key}  # fmt: skip
    return await send(http, base + "/api/v1/internal/credits/use", body)


def debit_storm(
    http: aiohttp.ClientSession, base: str, keys: dict[str, str]
) -> list[asyncio.Future[Answer]]:
    """One keyed debit per key (key -> user), all in flight at once."""
    return [asyncio.ensure_future(debit(http, base, user, key)) for key, user in keys.items()]


async def retry_until_applied(
    http: aiohttp.ClientSession,
    base: str,
    keys: dict[str, str],
    failed: Sequence[str],
    *,
    attempts: int = 1,
) -> None:
    """Retry each failed debit with its key until it is answered 200; between attempts
    only a 503 is acceptable."""
    for key in failed:
        for _ in range(attempts):
            answer = await debit(http, base, keys[key], key)
            if answer.status == 200:
                break
            assert answer.status == 503, (key, answer)
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{key} was never applied")


async def fund(http: aiohttp.ClientSession, base: str, users: Sequence[str], amount: int) -> None:
    for user in users:
        grant = {"userId": user, "amount": amount, "description": "funds"}
        answer = await send(http, base + "/api/v1/internal/credits/refund", grant)
        assert answer.status == 200, answer


def answered(storm: Sequence[asyncio.Future[Answer]], count: int) -> asyncio.Event:
    """An event set once `count` of the storm's requests have their answer."""
    event, done = asyncio.Event(), 0

    def one(_future: asyncio.Future[Answer]) -> None:
        nonlocal done
        done += 1
        if done >= count:
            event.set()

    for future in storm:
        future.add_done_callback(one)
    return event


async def assert_no_drift(store: SqlStore, keys: dict[str, str], funds: int) -> None:
    """Every key of `keys` (key -> user) has exactly one ledger entry, balances are the
    funds minus exactly those debits, and reconcile finds nothing."""
    async with store.engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                "SELECT idempotency_key, count(*) AS n FROM credits.transactions"
                " WHERE type = 'usage' GROUP BY idempotency_key"
            )
        )
        per_key = {row.idempotency_key: row.n for row in rows}
        found = await connection.execute(sa.text("SELECT user_id, balance FROM credits.balances"))
        balances: dict[str, int] = {row.user_id: row.balance for row in found}
    assert set(per_key) == set(keys), "every debit is in the ledger once retried"
    assert max(per_key.values()) == 1, "no key applied twice"
    for user in set(keys.values()):
        applied = sum(1 for u in keys.values() if u == user)
        assert balances[user] == funds - DEBIT * applied, user
    assert (await ReconcileService(store).run()).ok


class AuthService:
    """A JWKS endpoint on loopback that can be taken down."""

    def __init__(self) -> None:
        self.key = SigningKey.generate()
        self.down = False
        self.fetches = 0
        self.url = ""

    async def jwks(self, _request: web.Request) -> web.Response:
        self.fetches += 1
        if self.down:
            return web.Response(status=503)
        return web.json_response(self.key.jwks())

    def token(self, sub: str, role: str = "user") -> str:
        return self.key.mint(sub, issuer=self.url, email=email(sub), role=role)


def email(user: str) -> str:
    """The e-mail address in a user's tokens."""
    return f"{user}@example.com"


@asynccontextmanager
async def serving_jwks() -> AsyncIterator[AuthService]:
    """An `AuthService` on a loopback port for as long as the context lasts."""
    service = AuthService()
    app = web.Application()
    app.router.add_get("/api/auth/jwks", service.jwks)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    service.url = str(server.make_url("")).rstrip("/")
    try:
        yield service
    finally:
        await server.close()
