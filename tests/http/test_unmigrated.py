"""A PostgreSQL database nobody migrated (PostgreSQL is never migrated by `serve`): the
server refuses to start on it, and readiness says 503 until its schema is the code's,
instead of reporting ready and failing every other route."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql import migrate
from mana_credits_adapters.sql.store import SqlStore, create_engine
from mana_credits_http import create_app

from ..cli.test_setup_faults import assert_one_line, environment, mana_credits
from ..postgres import create_database, drop_database, free_port
from .conftest import Jwks

pytestmark = pytest.mark.postgres


@pytest.fixture
def unmigrated(pg_url: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database."""
    name = f"unmigrated_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_url, name)
    try:
        yield url
    finally:
        drop_database(pg_url, name)


def production(home: Path, url: str, auth: str) -> dict[str, str]:
    return {
        "MANA_CREDITS_HOME": str(home),
        "DATABASE_URL": url,
        "MANA_AUTH_URL": auth,
        "MANA_SERVICE_KEY": "a-service-key",
        "STRIPE_SECRET_KEY": "sk_test_x",
        "STRIPE_WEBHOOK_SECRET": "whsec_x",
    }


async def test_readiness_is_503_until_the_schema_is_the_codes(
    unmigrated: str, jwks: Jwks, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(**production(tmp_path, unmigrated, jwks.url))
    store = SqlStore(create_engine(unmigrated, pool_size=2))
    services = build_services(store, settings)
    try:
        app = create_app(settings, services=services)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            for _ in range(2):
                response = await client.get("/health/ready")
                assert response.status == 503
                assert (await response.json())["code"] == "store_unavailable"
            told = [r.getMessage() for r in caplog.records if "schema_outdated" in str(r.__dict__)]
            assert len(told) == 1, told  # said once, not at every probe
            assert "run mana-credits db upgrade" in told[0]
            await migrate.upgrade(store.engine)
            assert (await client.get("/health/ready")).status == 200
    finally:
        await services.close()
        await store.close()


def test_serve_refuses_a_database_nobody_migrated(
    unmigrated: str, jwks: Jwks, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = environment(home, **production(home, unmigrated, jwks.url))
    result = mana_credits("serve", "--port", str(free_port()), env=env)
    line = assert_one_line(result, "schema_outdated")
    assert "is at revision none" in line
    assert line.endswith("run mana-credits db upgrade")
