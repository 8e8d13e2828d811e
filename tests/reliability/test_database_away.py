"""PostgreSQL stopped and started again under the CLI and the server.

The CLI names the database it cannot reach (host, port, the driver's cause) in one line;
the server logs one warning when the database becomes unreachable and one info line
when it is back, whatever the number of probes and requests in between. A cluster of
this module's own is stopped and started (stopping the shared one would take the other
tests' connections with it).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql import migrate
from mana_credits_adapters.sql.store import create_engine
from mana_credits_cli.main import app

from ..conftest import own_cluster
from ..postgres import PostgresCluster, free_port

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-never-shown"
PROBE_INTERVAL = "0.1"


@pytest.fixture(scope="module")
def haltable() -> Iterator[PostgresCluster]:
    yield from own_cluster()


@pytest.fixture
async def database(haltable: PostgresCluster) -> str:
    """The cluster's URL with a password in it (trust auth ignores it), schema migrated."""
    engine = create_engine(haltable.url)
    await migrate.upgrade(engine)
    await engine.dispose()
    user = haltable.user
    return haltable.url.replace(f"postgresql+psycopg://{user}@", f"postgresql://{user}:{PASSWORD}@")


def test_the_cli_names_the_stopped_database(haltable: PostgresCluster, database: str) -> None:
    runner = CliRunner()
    args = ["credits", "balance", "alice", "--database-url", database]
    haltable.halt()
    try:
        result = runner.invoke(app, args)
    finally:
        haltable.resume()
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1, result.stderr
    line = result.stderr.strip()
    assert line.startswith("error: database_unreachable: cannot connect to PostgreSQL at ")
    assert f"127.0.0.1:{haltable.port}" in line
    assert "refused" in line.lower()
    assert f"postgresql://{haltable.user}:***@127.0.0.1:{haltable.port}/" in line
    assert PASSWORD not in result.output
    back = runner.invoke(app, ["db", "current", "--database-url", database])
    assert back.exit_code == 0, back.output
    assert back.stdout.startswith(str(migrate.head()))


@dataclass
class ServerLog:
    """The server's JSON log lines as they arrive."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def named(self, message: str) -> list[dict[str, Any]]:
        return [entry for entry in self.entries if entry.get("message") == message]

    async def wait_for(self, message: str) -> dict[str, Any]:
        async with asyncio.timeout(60):  # a guard against hanging, not a measure
            while not self.named(message):
                self.arrived.clear()
                await self.arrived.wait()
        return self.named(message)[0]


@asynccontextmanager
async def serving(url: str, home: Path, port: int) -> AsyncIterator[ServerLog]:
    settings = {str(f.alias) for f in Settings.model_fields.values()}
    env = {k: v for k, v in os.environ.items() if k not in settings} | {
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": url,
        "MANA_CREDITS_HOME": str(home),
        "MANA_SERVICE_KEY": "away-service-key",
        "MANA_AUTH_URL": "http://127.0.0.1:9",
        "STRIPE_SECRET_KEY": "sk_test_away",
        "STRIPE_WEBHOOK_SECRET": "whsec_away",
        "MANA_CREDITS_BILLING_ENABLED": "false",
        "MANA_CREDITS_DB_PROBE_INTERVAL": PROBE_INTERVAL,
        "LOG_LEVEL": "INFO",
    }
    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "mana_credits_cli", "serve", "--port", str(port)),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    log = ServerLog()

    async def read() -> None:
        assert server.stderr is not None
        async for line in server.stderr:
            text = line.decode().strip()
            log.raw.append(text)
            with suppress(json.JSONDecodeError):
                log.entries.append(json.loads(text))
            log.arrived.set()

    reader = asyncio.create_task(read())
    try:
        yield log
    finally:
        if server.returncode is None:
            server.terminate()
            try:
                await asyncio.wait_for(server.wait(), timeout=20)
            except TimeoutError:
                server.kill()
        await server.wait()
        await reader


async def ready(http: aiohttp.ClientSession, base: str) -> int:
    try:
        async with http.get(base + "/health/ready") as response:
            return response.status
    except aiohttp.ClientConnectionError:
        return 0


async def until_ready(http: aiohttp.ClientSession, base: str, status: int) -> None:
    async with asyncio.timeout(60):  # a guard against hanging, not a measure
        while True:
            if await ready(http, base) == status:
                return
            await asyncio.sleep(0.05)


async def test_the_server_logs_one_line_when_the_database_goes_and_one_when_back(
    haltable: PostgresCluster, database: str, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with serving(database, tmp_path, port) as log, aiohttp.ClientSession() as http:
        await until_ready(http, base, 200)
        haltable.halt()
        try:
            down = await log.wait_for("database unreachable")
            # Probes and readiness checks keep failing: still one line.
            await until_ready(http, base, 503)
            for _ in range(5):
                assert await ready(http, base) == 503
                await asyncio.sleep(float(PROBE_INTERVAL))
        finally:
            haltable.resume()
        back = await log.wait_for("database reachable again")
        await until_ready(http, base, 200)
        for _ in range(5):  # several more probes, all fine: nothing more to say
            assert await ready(http, base) == 200
            await asyncio.sleep(float(PROBE_INTERVAL))
    assert down["level"] == "warning"
    assert down["database"] == f"127.0.0.1:{haltable.port}"
    assert down["url"] == (
        f"postgresql://{haltable.user}:***@127.0.0.1:{haltable.port}/mana_credits_test"
    )
    assert down["cause"]
    assert back["level"] == "info"
    assert back["database"] == down["database"]
    assert back["downSeconds"] >= 0
    assert len(log.named("database unreachable")) == 1
    assert len(log.named("database reachable again")) == 1
    assert not any(PASSWORD in line for line in log.raw)
    assert not any("Traceback" in line for line in log.raw)
