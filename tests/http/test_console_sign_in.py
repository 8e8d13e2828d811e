"""Console sign-in over HTTP on every store: single-use links (concurrent redemptions
included), expiry, admin tokens only, CSRF on every form, the session cookie's flags,
and no session started by a refused form that came without it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.memory import MemoryStore
from mana_credits_adapters.settings import Settings
from mana_credits_core.ports import Store
from mana_credits_core.services import Services
from mana_credits_http import create_app
from mana_credits_http.console.session import SESSION_SECONDS

from .conftest import Jwks, settings_like
from .console_client import Client, csrf_of, redeem, signed_in_as


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def console_services(store: Store, http_settings: Settings, clock: TickingClock) -> Services:
    return build_services(store, http_settings, clock=clock)


@pytest.fixture
async def server(console_services: Services, http_settings: Settings) -> AsyncIterator[TestServer]:
    app = create_app(http_settings, services=console_services)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.fixture
async def browser(server: TestServer) -> AsyncIterator[Client]:
    async with TestClient(server) as client:
        yield client


@pytest.fixture
async def other_browser(server: TestServer) -> AsyncIterator[Client]:
    """A second browser: its own cookies."""
    async with TestClient(server) as client:
        yield client


async def test_a_link_signs_in_once(
    browser: Client, other_browser: Client, console_services: Services
) -> None:
    assert await signed_in_as(browser) is None
    link = await console_services.console.issue_link("carol")
    answer = await redeem(browser, link.token)
    assert (answer.status, answer.headers["Location"]) == (303, "/console")
    assert await signed_in_as(browser) == "carol"

    again = await redeem(other_browser, link.token)
    assert again.status == 403
    assert "unknown, used or expired" in await again.text()
    assert await signed_in_as(other_browser) is None


async def test_two_concurrent_redemptions_make_exactly_one_session(
    browser: Client, other_browser: Client, console_services: Services
) -> None:
    link = await console_services.console.issue_link("carol")
    tokens = [await csrf_of(c, f"/console/link/{link.token}") for c in (browser, other_browser)]
    answers = await asyncio.gather(
        *(
            c.post(f"/console/link/{link.token}", data={"csrf": t}, allow_redirects=False)
            for c, t in zip((browser, other_browser), tokens, strict=True)
        )
    )
    assert sorted(a.status for a in answers) == [303, 403]
    sessions = [await signed_in_as(c) for c in (browser, other_browser)]
    assert sorted(s or "" for s in sessions) == ["", "carol"]


async def test_an_expired_or_unknown_link_is_refused(
    browser: Client, console_services: Services, clock: TickingClock
) -> None:
    link = await console_services.console.issue_link("carol")
    clock.advance(timedelta(minutes=10))
    expired = await redeem(browser, link.token)
    assert expired.status == 403
    assert "unknown, used or expired" in await expired.text()
    unknown = await redeem(browser, "x" * 43)
    assert unknown.status == 403
    assert await signed_in_as(browser) is None


@pytest.mark.parametrize("store", ["memory"], indirect=True)
async def test_a_crafted_link_is_refused_and_its_form_posts_nowhere_else(
    browser: Client, console_services: Services
) -> None:
    link = await console_services.console.issue_link("carol")
    assert (await redeem(browser, link.token)).status == 303
    for token in ("..%2Fsign-out", "..%2Freconcile", "x%22%3E", "a%20b", "%C3%A9t%C3%A9"):
        page = await browser.get(f"/console/link/{token}")
        text = await page.text()
        assert (page.status, "not a sign-in link" in text) == (404, True), token
        assert 'action="/console/link/' not in text, token
        csrf = await csrf_of(browser, "/console")
        posted = await browser.post(
            f"/console/link/{token}", data={"csrf": csrf}, allow_redirects=False
        )
        assert posted.status == 404, token
    assert await signed_in_as(browser) == "carol"


async def test_a_link_just_before_its_expiry_still_works(
    browser: Client, console_services: Services, clock: TickingClock
) -> None:
    link = await console_services.console.issue_link("carol")
    clock.advance(timedelta(minutes=9, seconds=59))
    assert (await redeem(browser, link.token)).status == 303


async def test_admin_tokens_sign_in_and_others_are_refused(browser: Client, jwks: Jwks) -> None:
    csrf = await csrf_of(browser, "/console/sign-in")
    user = await browser.post(
        "/console/sign-in",
        data={"csrf": csrf, "token": jwks.token("mallory")},
        allow_redirects=False,
    )
    assert user.status == 403
    assert "not an admin" in await user.text()
    forged = await browser.post(
        "/console/sign-in", data={"csrf": csrf, "token": "not.a.jwt"}, allow_redirects=False
    )
    assert forged.status == 401
    assert await signed_in_as(browser) is None

    admin = await browser.post(
        "/console/sign-in",
        data={"csrf": csrf, "token": jwks.token("root", role="admin", email="ops@example.com")},
        allow_redirects=False,
    )
    assert (admin.status, admin.headers["Location"]) == (303, "/console")
    assert await signed_in_as(browser) == "ops@example.com"


async def test_forms_without_the_sessions_csrf_token_are_refused(
    browser: Client, other_browser: Client, console_services: Services, jwks: Jwks
) -> None:
    admin = jwks.token("root", role="admin")
    for data in ({"token": admin}, {"token": admin, "csrf": "guess"}):
        answer = await browser.post("/console/sign-in", data=data, allow_redirects=False)
        assert answer.status == 403
    assert await signed_in_as(browser) is None

    link = await console_services.console.issue_link("carol")
    assert (await redeem(browser, link.token)).status == 303
    await console_services.credits.grant("dave", 5, "opening", "test")
    # Another browser's token (a valid one, of another session) is no good either.
    foreign = await csrf_of(other_browser, "/console/sign-in")
    for data in ({}, {"csrf": "guess"}, {"csrf": foreign}):
        answer = await browser.post(
            "/console/users/dave/grant",
            data={"amount": "100", "reason": "forged", "key": "k", **data},
            allow_redirects=False,
        )
        assert answer.status == 403
        assert "did not come from the console" in await answer.text()
    assert (await console_services.credits.balance("dave")).balance == 5
    assert (await console_services.console.audit()).entries == []
    out = await browser.post("/console/sign-out", data={}, allow_redirects=False)
    assert out.status == 403
    assert await signed_in_as(browser) == "carol"


async def test_sign_out_ends_the_session(browser: Client, console_services: Services) -> None:
    link = await console_services.console.issue_link("carol")
    await redeem(browser, link.token)
    csrf = await csrf_of(browser, "/console")
    out = await browser.post("/console/sign-out", data={"csrf": csrf}, allow_redirects=False)
    assert (out.status, out.headers["Location"]) == (303, "/console/sign-in")
    assert await signed_in_as(browser) is None


@pytest.mark.parametrize("store", ["memory"], indirect=True)
async def test_the_session_cookie_is_http_only_lax_and_expires(
    browser: Client, console_services: Services
) -> None:
    link = await console_services.console.issue_link("carol")
    answer = await redeem(browser, link.token)
    cookie = answer.cookies["mana_console"]
    assert cookie["httponly"] is True
    # Lax: a link to the console from another site (a ticket) keeps the session.
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/console"
    assert cookie["max-age"] == str(8 * 3600)
    assert not cookie["secure"]  # plain http here: a Secure cookie would never come back


async def test_a_form_posted_without_the_cookie_leaves_the_session_alone(
    browser: Client, other_browser: Client, console_services: Services
) -> None:
    # A form on another site posted to the console carries no cookie: its refusal
    # starts no session, so no cookie of its making replaces the operator's.
    link = await console_services.console.issue_link("carol")
    assert (await redeem(browser, link.token)).status == 303
    for path in ("/console/sign-out", "/console/users/dave/grant", "/console/sign-in"):
        answer = await other_browser.post(path, data={"csrf": "x"}, allow_redirects=False)
        assert answer.status in (401, 403), path
        assert "mana_console" not in answer.cookies, path
    assert await signed_in_as(browser) == "carol"


async def test_the_cookie_is_secure_when_served_over_https(
    http_settings: Settings, jwks: Jwks
) -> None:
    settings = settings_like(http_settings, BASE_URL="https://credits.example.com")
    app = create_app(settings, services=build_services(MemoryStore(), settings))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        page = await client.get("/console/sign-in")
        assert page.cookies["mana_console"]["secure"] is True


@pytest.mark.parametrize("store", ["memory"], indirect=True)
async def test_a_session_ends_after_eight_hours(
    browser: Client, console_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = await console_services.console.issue_link("carol")
    await redeem(browser, link.token)
    assert await signed_in_as(browser) == "carol"
    started = time.time()
    monkeypatch.setattr(time, "time", lambda: started + SESSION_SECONDS - 60)
    assert await signed_in_as(browser) == "carol"
    monkeypatch.setattr(time, "time", lambda: started + SESSION_SECONDS + 1)
    assert await signed_in_as(browser) is None
