"""The dev checkout page redirects only to the URLs the purchase was made with: the
query's URLs count only with the gateway's signature, and the page has a strict CSP."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.identity.dev import SigningKey
from mana_credits_adapters.payments.dev import CHECKOUT_KEY_FILE, DevGateway
from mana_credits_adapters.settings import Settings
from mana_credits_http import create_app

from .conftest import bearer

Client = TestClient[web.Request, web.Application]
EVIL = "https://evil.example/phish"
SUCCESS = "http://localhost:5173/ok"
CANCEL = "http://localhost:5173/cancel"


@pytest.fixture
async def checkout(tmp_path: Path) -> Any:
    settings = Settings(MANA_CREDITS_HOME=tmp_path)
    token = SigningKey.load_or_create(tmp_path).mint("carol", issuer=settings.issuer)
    async with TestClient(TestServer(create_app(settings))) as client:
        packages = await (await client.get("/api/v1/credits/packages")).json()
        started = await client.post(
            "/api/v1/credits/purchase",
            json={"packageId": packages[0]["id"], "successUrl": SUCCESS, "cancelUrl": CANCEL},
            headers=bearer(token),
        )
        url = urlsplit((await started.json())["checkoutUrl"])
        yield client, url.path, {k: v[0] for k, v in parse_qs(url.query).items()}


async def test_a_url_in_the_query_is_never_followed_unsigned(checkout: Any) -> None:
    client, path, _query = checkout
    page = await client.get(path, params={"cancel": EVIL})
    assert "evil.example" not in await page.text()
    paid = await client.post(path, params={"success": EVIL}, allow_redirects=False)
    assert paid.status == 200
    assert "Location" not in paid.headers
    assert "Payment recorded" in await paid.text()


async def test_a_signed_query_with_another_url_is_not_followed(checkout: Any) -> None:
    client, path, query = checkout
    page = await client.get(path, params=query | {"cancel": EVIL})
    text = await page.text()
    assert "evil.example" not in text
    assert CANCEL not in text  # the signature no longer matches: no link at all
    paid = await client.post(
        f"{path}?{urlencode(query | {'success': EVIL})}", allow_redirects=False
    )
    assert (paid.status, paid.headers.get("Location")) == (200, None)


async def test_the_signed_urls_are_followed_and_the_page_has_a_policy(checkout: Any) -> None:
    client, path, query = checkout
    page = await client.get(path, params=query)
    assert f'href="{CANCEL}"' in await page.text()
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "form-action 'self'" in policy
    paid = await client.post(f"{path}?{urlencode(query)}", allow_redirects=False)
    assert (paid.status, paid.headers["Location"]) == (303, SUCCESS)


async def test_every_gateway_of_one_home_signs_alike(tmp_path: Path) -> None:
    # Workers and restarts share the key kept in the home folder, readable by its owner only.
    first, second = DevGateway("http://x", tmp_path), DevGateway("http://x", tmp_path)
    session = await first.create_checkout_session(
        customer_id="c", amount_cents=100, purchase_id="p1", product_name="n",
        success_url=SUCCESS, cancel_url=CANCEL, metadata={},
    )  # fmt: skip
    query = {k: v[0] for k, v in parse_qs(urlsplit(session.url).query).items()}
    assert second.return_urls("p1", query) == (SUCCESS, CANCEL)
    assert second.return_urls("p2", query) is None
    assert stat.S_IMODE((tmp_path / CHECKOUT_KEY_FILE).stat().st_mode) == 0o600
    # Elsewhere (another home, or none) the signature is worth nothing.
    assert DevGateway("http://x", tmp_path / "other").return_urls("p1", query) is None
    assert DevGateway("http://x").return_urls("p1", query) is None
