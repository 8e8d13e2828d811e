"""Driving the console over HTTP as a browser would: cookies kept, CSRF tokens read
from the page's forms."""

from __future__ import annotations

import re

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def csrf_of(client: Client, path: str) -> str:
    """The CSRF token the form on `path` carries (GET; the session starts there)."""
    page = await client.get(path)
    assert page.status == 200, await page.text()
    found = CSRF.search(await page.text())
    assert found is not None
    return found.group(1)


async def redeem(client: Client, token: str) -> ClientResponse:
    """Open a sign-in link and press its button, as an operator does."""
    csrf = await csrf_of(client, f"/console/link/{token}")
    return await client.post(f"/console/link/{token}", data={"csrf": csrf}, allow_redirects=False)


async def signed_in_as(client: Client) -> str | None:
    """The operator the console greets, None when it sends us to sign in."""
    page = await client.get("/console", allow_redirects=False)
    if page.status == 303:
        assert page.headers["Location"] == "/console/sign-in"
        return None
    assert page.status == 200
    found = re.search(r'<b id="operator">([^<]*)</b>', await page.text())
    assert found is not None
    return found.group(1)
