"""The live server shared by the model-based test and the API fuzzing of one module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .live import LiveServer


@pytest.fixture(scope="module")
def live(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(pg_url, tmp_path_factory.mktemp("live"))
    yield server
    server.close()
