"""HEAD answers as GET does, without the body (RFC 9110, 9.3.2): health probes and
caches use it; a route without GET still answers 405."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from .conftest import Jwks, bearer

Client = TestClient[web.Request, web.Application]
PRICES = "/api/v1/credits/prices"


async def test_head_of_a_public_route_has_the_gets_status_and_headers(client: Client) -> None:
    got = await client.get(PRICES)
    head = await client.head(PRICES)
    assert (head.status, got.status) == (200, 200)
    assert await head.read() == b""
    for name in ("Content-Type", "ETag", "Cache-Control"):
        assert head.headers[name] == got.headers[name], name
    fresh = await client.head(PRICES, headers={"If-None-Match": got.headers["ETag"]})
    assert fresh.status == 304
    assert (await client.head("/health")).status == 200


async def test_head_checks_credentials_as_get_does(client: Client, jwks: Jwks) -> None:
    assert (await client.head("/api/v1/credits/balance")).status == 401
    signed = await client.head("/api/v1/credits/balance", headers=bearer(jwks.token("ann")))
    assert signed.status == 200
    assert await signed.read() == b""


async def test_head_of_a_route_without_get_is_405(client: Client) -> None:
    refused = await client.head("/api/v1/credits/use")
    assert refused.status == 405
    assert "HEAD" not in refused.headers["Allow"]


async def test_head_of_a_console_page_without_a_session_goes_to_sign_in(client: Client) -> None:
    for path in ("/console", "/console/prices", "/console/users"):
        got = await client.get(path, allow_redirects=False)
        head = await client.head(path, allow_redirects=False)
        assert (head.status, got.status) == (303, 303), path
        assert head.headers["Location"] == got.headers["Location"] == "/console/sign-in"
        assert "Set-Cookie" not in head.headers
