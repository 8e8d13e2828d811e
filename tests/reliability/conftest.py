"""The live server of the model-based test and the API fuzzing; the JWKS endpoint of the
fault and race tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from .live import LiveServer
from .server import AuthService, serving_jwks


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
