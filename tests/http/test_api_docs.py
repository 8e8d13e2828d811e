"""/docs in a real browser: headless Chromium renders every operation of /openapi.json
from assets this server serves, and no request leaves 127.0.0.1.

Needs Debian's chromium (`apt-get install -y chromium`). Outside CI a missing browser
skips with that reason; in CI (`CI` set) it fails, so the check cannot silently vanish.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Request, Route, async_playwright

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.memory import MemoryStore
from mana_credits_adapters.settings import Settings
from mana_credits_http import create_app

from .metrics_reading import Client

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: CI must run `apt-get install -y chromium`")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


@pytest.fixture
async def docs_client(http_settings: Settings) -> AsyncIterator[Client]:
    """The page does not depend on the store: one run, on the in-memory one."""
    app = create_app(http_settings, services=build_services(MemoryStore(), http_settings))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def test_docs_page_lists_every_operation_offline(docs_client: Client, tmp_path: Path) -> None:
    browser_path = chromium()
    client = docs_client
    document = await (await client.get("/openapi.json")).json()
    expected = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert len(expected) > 30

    seen: list[str] = []
    blocked: list[str] = []
    problems: list[str] = []

    async def only_loopback(route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host == "127.0.0.1":
            await route.continue_()
        else:  # as if there were no network at all
            blocked.append(route.request.url)
            await route.abort()

    def failed(request: Request) -> None:
        problems.append(f"failed: {request.url} {request.failure}")

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a new, empty profile
            executable_path=browser_path,
            headless=True,
            args=FLAGS,
        )
        try:
            await context.route("**/*", only_loopback)
            context.on("request", lambda request: seen.append(request.url))
            context.on("requestfailed", failed)
            page = await context.new_page()
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            page.on("pageerror", lambda error: problems.append(str(error)))
            response = await page.goto(str(client.make_url("/docs")))
            assert response is not None
            assert response.status == 200
            # Swagger UI renders one block per operation once it has read /openapi.json.
            await page.wait_for_selector(".opblock", timeout=30_000)
            rendered = await page.eval_on_selector_all(
                ".opblock",
                """blocks => blocks.map(b => [
                    b.querySelector('.opblock-summary-method').textContent.toLowerCase(),
                    b.querySelector('.opblock-summary-path').getAttribute('data-path')])""",
            )
            await page.screenshot(path=str(tmp_path / "docs.png"))
        finally:
            await context.close()

    assert {(method, path) for method, path in rendered} == expected
    assert blocked == []
    assert problems == []
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in seen), seen
    assert any(url.endswith("/docs/assets/swagger-ui-bundle.js") for url in seen)
    assert any(url.endswith("/openapi.json") for url in seen)


async def test_docs_assets_are_served_by_the_server(docs_client: Client) -> None:
    client = docs_client
    page = await client.get("/docs")
    assert page.status == 200
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    html = await page.text()
    assert "http://" not in html
    assert "https://" not in html
    bundle = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status == 200
    assert "SwaggerUIBundle" in await bundle.text()
    css = await client.get("/docs/assets/swagger-ui.css")
    assert (css.status, css.content_type) == (200, "text/css")
