"""`/g/<code>`, the page a gift's shortUrl opens: public info, how to redeem, 404, limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.settings import Settings
from mana_credits_core import TransactionType
from mana_credits_core.services import Services
from mana_credits_http import create_app

from .conftest import Jwks, bearer, settings_like

Client = TestClient[web.Request, web.Application]


async def make_gift(client: Client, token: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/gifts", json=body, headers=bearer(token))
    assert response.status == 201, await response.text()
    gift: dict[str, Any] = await response.json()
    return gift


async def test_short_url_shows_the_gift_and_how_to_redeem_it(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    await app_services.credits.credit("alice", 1000, TransactionType.GRANT, "funds")
    alice = jwks.token("alice", name="Alice <script>")
    gift = await make_gift(client, alice, totalCredits=250, message="Enjoy & <b>spend</b>")
    path = gift["shortUrl"].removeprefix("http://localhost:3061")
    assert path == f"/g/{gift['code']}"

    response = await client.get(path.lower())  # codes are case-insensitive, as in the API
    assert (response.status, response.content_type) == (200, "text/html")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    text = await response.text()
    assert '<span id="credits">250</span> credits from Alice &lt;script&gt;' in text
    one = await make_gift(client, alice, totalCredits=1)
    single = await (await client.get(f"/g/{one['code']}")).text()
    assert '<span id="credits">1</span> credit from Alice' in single
    assert '<blockquote id="message">Enjoy &amp; &lt;b&gt;spend&lt;/b&gt;</blockquote>' in text
    assert '<b id="status">active</b>' in text
    # 90 days after the test clock's 1 January 2026
    assert '<p id="redeemable">Redeemable until <time datetime="2026-04-01T00:00:00.000Z">' in text
    assert "01 April 2026, 00:00 UTC</time>" in text
    assert f"/api/v1/gifts/{gift['code']}/redeem" in text
    assert "alice@example.com" not in text

    redeemed = await client.post(f"/api/v1/gifts/{gift['code']}/redeem", headers=bearer(
        jwks.token("bob")))  # fmt: skip
    assert redeemed.status == 200
    after = await (await client.get(path)).text()
    assert '<b id="status">depleted</b>' in after
    assert "This gift has already been redeemed." in after
    assert "How to redeem" not in after


async def test_personalized_gift_page_hides_the_address(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    await app_services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
    gift = await make_gift(
        client, jwks.token("alice"), totalCredits=10, type="personalized",
        targetEmail="bob@example.com",
    )  # fmt: skip
    text = await (await client.get(f"/g/{gift['code']}")).text()
    assert "bob@example.com" not in text
    assert "only the account with the e-mail address" in text


async def test_unknown_codes_are_a_404_page_counted_with_gift_info(
    jwks: Jwks, app_services: Services, http_settings: Settings, tmp_path: Path
) -> None:
    settings = settings_like(
        http_settings,
        MANA_CREDITS_GIFT_FAILURES=4,
    )
    async with TestClient(TestServer(create_app(settings, services=app_services))) as client:
        missing = await client.get("/g/NOSUCHCODE")
        assert (missing.status, missing.content_type) == (404, "text/html")
        assert "No such gift" in await missing.text()
        malformed = await client.get("/g/" + "X" * 80)
        assert (malformed.status, malformed.content_type) == (404, "text/html")
        assert (await client.get("/api/v1/gifts/GUESS1")).status == 404
        assert (await client.get("/g/GUESS2")).status == 404
        # four misses, on either route, use up the limit of both
        limited = await client.get("/g/GUESS3")
        assert (limited.status, limited.content_type) == (429, "text/html")
        assert (await client.get("/api/v1/gifts/GUESS4")).status == 429
