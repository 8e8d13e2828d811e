"""A damaged SQLite file: 503 with the error envelope and no internals, readiness says
so, and the operator reads the file's name once in the log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.identity.dev import SigningKey
from mana_credits_adapters.settings import Settings
from mana_credits_http import create_app

from ..damage import USERS, damaged_home
from .conftest import bearer

Client = TestClient[web.Request, web.Application]


async def test_a_damaged_database_is_503_without_internals_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = await damaged_home(tmp_path / "home")
    settings = Settings(MANA_CREDITS_HOME=database.parent)
    key = SigningKey.load_or_create(database.parent)
    caplog.set_level(logging.INFO)
    async with TestClient(TestServer(create_app(settings))) as client:
        statuses = []
        for user in USERS * 2:
            token = key.mint(user, issuer=settings.issuer)
            for path in ("/api/v1/credits/balance", "/api/v1/credits/transactions?limit=100"):
                answer = await client.get(path, headers=bearer(token))
                statuses.append(answer.status)
                if answer.status != 503:
                    continue
                assert await answer.json() == {
                    "statusCode": 503,
                    "message": "Credit store temporarily unavailable",
                    "code": "store_unavailable",
                }
        assert 503 in statuses
        assert 500 not in statuses
        ready = await client.get("/health/ready")
        assert ready.status == 503
        assert (await ready.json())["code"] == "store_unavailable"
    faults = [r for r in caplog.records if str(database) in r.getMessage()]
    assert len(faults) == 1, [r.getMessage() for r in faults]
    assert "corrupt_database" in str(getattr(faults[0], "fields", {}))
    assert not [r for r in caplog.records if r.exc_info]
