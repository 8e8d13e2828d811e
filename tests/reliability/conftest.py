"""The live server of the model-based test and the API fuzzing; the JWKS endpoint of the
fault and race tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from .live import LiveServer
from .server import AuthService


@pytest.fixture(scope="module")
def live(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(pg_url, tmp_path_factory.mktemp("live"))
    yield server
    server.close()


@pytest.fixture
async def auth() -> AsyncIterator[AuthService]:
    async with serving_jwks() as service:
        yield service


@pytest.fixture(scope="module")
async def module_auth() -> AsyncIterator[AuthService]:
    async with serving_jwks() as service:
        yield service


@asynccontextmanager
async def serving_jwks() -> AsyncIterator[AuthService]:
    service = AuthService()
    app = web.Application()
    app.router.add_get("/api/auth/jwks", service.jwks)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    service.url = str(server.make_url("")).rstrip("/")
    yield service
    await server.close()
