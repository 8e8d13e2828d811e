"""The failed-lookup limit against guessing gift codes: whom it counts, what it blocks."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.errors import InvalidSetting
from mana_credits_adapters.networks import parse_networks
from mana_credits_adapters.settings import Settings
from mana_credits_core import Principal, TransactionType
from mana_credits_core.services import Services
from mana_credits_http import create_app
from mana_credits_http.ratelimit import client_key

from .conftest import Jwks, bearer, settings_like

Client = TestClient[web.Request, web.Application]
ALLOWED = 3
Serve = Callable[[str], AbstractAsyncContextManager[Client]]


@pytest.fixture
def serve(app_services: Services, http_settings: Settings, tmp_path: Path) -> Serve:
    """A server allowing ALLOWED failures per client, trusting the given proxies."""

    @asynccontextmanager
    async def serving(proxies: str) -> AsyncIterator[Client]:
        settings = settings_like(
            http_settings,
            MANA_CREDITS_GIFT_FAILURES=ALLOWED,
            MANA_CREDITS_TRUSTED_PROXIES=proxies,
        )
        app = create_app(settings, services=app_services)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield client

    return serving


async def real_code(services: Services) -> str:
    await services.credits.credit("alice", 10, TransactionType.GRANT, "funds")
    return (await services.gifts.create(Principal("alice"), 10)).code


async def lookup(client: Client, code: str, forwarded_for: str | None = None) -> int:
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    return (await client.get(f"/api/v1/gifts/{code}", headers=headers)).status


async def redeem(client: Client, code: str, token: str, forwarded_for: str | None = None) -> int:
    headers = bearer(token) | ({} if forwarded_for is None else {"X-Forwarded-For": forwarded_for})
    return (await client.post(f"/api/v1/gifts/{code}/redeem", headers=headers)).status


async def guess_until_blocked(client: Client, forwarded_for: str | None = None) -> None:
    statuses = [await lookup(client, f"GUESS{i}", forwarded_for) for i in range(ALLOWED + 1)]
    assert statuses == [404] * ALLOWED + [429]


async def test_a_blocked_client_is_refused_even_for_a_real_code(
    serve: Serve, app_services: Services, jwks: Jwks
) -> None:
    code = await real_code(app_services)
    async with serve("") as client:
        assert await lookup(client, code) == 200  # successes never count
        await guess_until_blocked(client)
        # A real code answered while blocked would tell the guesser it hit.
        assert await lookup(client, code) == 429
        assert (await client.get(f"/g/{code}")).status == 429
        # The same holds for a signed-in guesser, on redeem and on lookups with its token.
        token = jwks.token("mallory")
        statuses = [await redeem(client, f"GUESS{i}", token) for i in range(ALLOWED)]
        assert statuses == [404] * ALLOWED
        assert await redeem(client, code, token) == 429
        lookup_signed_in = await client.get(f"/api/v1/gifts/{code}", headers=bearer(token))
        assert lookup_signed_in.status == 429
    assert (await app_services.gifts.info(code)).redeemed == 0


async def test_a_signed_in_guesser_is_limited_alone(
    serve: Serve, app_services: Services, jwks: Jwks
) -> None:
    """Everyone here shares 127.0.0.1, as the customers of one NAT or of a proxy not
    (yet) trusted do: a signed-in guesser's misses count against its account only."""
    code = await real_code(app_services)
    async with serve("") as client:
        mallory = jwks.token("mallory")
        guesses = [await redeem(client, f"GUESS{i}", mallory) for i in range(ALLOWED)]
        assert guesses == [404] * ALLOWED
        assert await redeem(client, "GUESS9", mallory) == 429
        misses = [
            (await client.get(f"/api/v1/gifts/GUESS{i}", headers=bearer(mallory))).status
            for i in range(2)
        ]
        assert misses == [429, 429]
        # Another signed-in user, and anyone signed out, on the same address is unaffected.
        assert await lookup(client, code) == 200
        assert await redeem(client, code, jwks.token("carol")) == 200
    assert (await app_services.gifts.info(code)).redeemed == 1


async def test_a_signed_out_guesser_does_not_lock_out_signed_in_users(
    serve: Serve, app_services: Services, jwks: Jwks
) -> None:
    code = await real_code(app_services)
    async with serve("") as client:
        await guess_until_blocked(client)
        assert await redeem(client, code, jwks.token("carol")) == 200
        # A bad token is no identity: it leaves the caller on its address's budget.
        assert (await client.get(f"/api/v1/gifts/{code}", headers=bearer("junk"))).status == 429


async def test_without_trusted_proxies_x_forwarded_for_is_ignored(serve: Serve) -> None:
    async with serve("") as client:
        # A guesser inventing a new X-Forwarded-For per request gains nothing.
        statuses = [await lookup(client, f"GUESS{i}", f"198.51.100.{i}") for i in range(5)]
        assert statuses == [404] * ALLOWED + [429] * 2


async def test_behind_a_trusted_proxy_each_client_has_its_own_budget(
    serve: Serve, app_services: Services
) -> None:
    code = await real_code(app_services)
    async with serve("127.0.0.1") as client:
        await guess_until_blocked(client, "203.0.113.5")
        # Everyone else behind the same proxy is unaffected.
        assert await lookup(client, code, "203.0.113.6") == 200
        assert await lookup(client, "NOSUCHCODE", "203.0.113.6") == 404
        assert (await client.get(f"/g/{code}", headers={"X-Forwarded-For": "203.0.113.6"})).ok
        # Forged entries to the left of what the proxy appended change nothing.
        assert await lookup(client, code, "192.0.2.1, 203.0.113.5") == 429
        assert await lookup(client, code, "203.0.113.5") == 429


async def test_the_client_is_the_rightmost_untrusted_hop(
    serve: Serve, app_services: Services
) -> None:
    code = await real_code(app_services)
    async with serve("127.0.0.1, 10.0.0.0/8") as client:
        # client → edge proxy 10.0.0.7 → proxy on 127.0.0.1 → us
        await guess_until_blocked(client, "203.0.113.9, 10.0.0.7")
        assert await lookup(client, code, "203.0.113.9") == 429
        assert await lookup(client, code, "203.0.113.10, 10.0.0.8") == 200


async def test_an_ipv6_client_counts_as_its_64(serve: Serve, app_services: Services) -> None:
    code = await real_code(app_services)
    async with serve("127.0.0.1") as client:
        for i in range(ALLOWED):
            assert await lookup(client, f"GUESS{i}", f"2001:db8:0:7::{i + 1}") == 404
        assert await lookup(client, code, "2001:db8:0:7::ffff") == 429
        assert await lookup(client, code, "2001:db8:0:8::1") == 200


PROXIES = parse_networks("10.0.0.0/8, 127.0.0.1 fd00::/8")


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.1", ["198.51.100.1"], "203.0.113.1"),  # peer not a proxy: header ignored
        ("127.0.0.1", [], "127.0.0.1"),  # a proxy that forwards for no one
        ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["198.51.100.1, 10.1.2.3"], "198.51.100.1"),
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["6.6.6.6", "198.51.100.1, 10.0.0.1"], "198.51.100.1"),  # two headers
        ("127.0.0.1", ["10.0.0.9, 10.0.0.1"], "10.0.0.9"),  # all proxies: the farthest
        ("127.0.0.1", ["junk, 10.0.0.1"], "10.0.0.1"),
        ("127.0.0.1", ["198.51.100.1:4711"], "198.51.100.1"),
        ("127.0.0.1", ["[2001:db8::1]:4711"], "2001:db8::/64"),
        ("fd00::1", ["2001:db8:1:2:3:4:5:6"], "2001:db8:1:2::/64"),
        ("::ffff:127.0.0.1", ["::ffff:198.51.100.1"], "198.51.100.1"),
        ("2001:db8::5", [], "2001:db8::/64"),
        (None, ["198.51.100.1"], "unknown"),
    ],
)
def test_client_key(peer: str | None, forwarded: list[str], client: str) -> None:
    assert client_key(peer, forwarded, PROXIES) == client


def test_trusted_proxies_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MANA_CREDITS_TRUSTED_PROXIES", "10.0.0.0/8,192.0.2.7")
    settings = Settings(MANA_CREDITS_HOME=tmp_path)
    assert parse_networks(settings.trusted_proxies) == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.7/32"),
    )
    assert Settings(MANA_CREDITS_HOME=tmp_path, trusted_proxies="").trusted_proxies == ""
    with pytest.raises(InvalidSetting, match=r"'10\.0\.0\.300' is not an IP address or network"):
        Settings(MANA_CREDITS_HOME=tmp_path, MANA_CREDITS_TRUSTED_PROXIES="10.0.0.300")
