"""The key set is fetched again on a schedule: a key the auth service withdraws stops
verifying (tokens it verified before included), one fetch at a time, and a failed fetch
keeps the last key set for a bounded time. A real JWKS endpoint on loopback whose key
set the tests change, a controllable monotonic clock, real tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.identity.dev import SigningKey
from mana_credits_adapters.identity.jwks import HttpJwks, JwksVerifier
from mana_credits_adapters.settings import Settings
from mana_credits_core.errors import Unauthenticated
from mana_credits_core.services import Services
from mana_credits_http import create_app

from .conftest import bearer
from .deep_json import deep_arrays

INTERVAL, COOLDOWN, GRACE = 300.0, 30.0, 3600.0


@dataclass
class AuthService:
    """An auth service stand-in on loopback: publishes `keys`, or answers what `fault`
    makes; each fetch waits for `gate` to be open."""

    keys: list[SigningKey]
    url: str = ""
    fetches: int = 0
    fault: Callable[[], web.Response] | None = None
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # set by every fetch

    def document(self) -> dict[str, Any]:
        return {"keys": [key.jwks()["keys"][0] for key in self.keys]}

    def token(self, key: SigningKey, sub: str = "alice") -> str:
        return key.mint(sub, issuer=self.url, email=f"{sub}@example.com")


@pytest.fixture
async def auth() -> AsyncIterator[AuthService]:
    state = AuthService([SigningKey.generate(), SigningKey.generate()])
    state.gate.set()

    async def serve(request: web.Request) -> web.Response:
        state.fetches += 1
        state.arrived.set()
        await state.gate.wait()
        if state.fault is not None:
            return state.fault()
        return web.json_response(state.document())

    app = web.Application()
    app.router.add_get("/api/auth/jwks", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.url = str(server.make_url("")).rstrip("/")
    yield state
    await server.close()


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    verifier: JwksVerifier
    clock: Monotonic
    decodes: list[int]


@pytest.fixture
async def setup(auth: AuthService, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Setup]:
    clock, decodes = Monotonic(), [0]
    real = jwt.decode

    def counting(*args: Any, **kwargs: Any) -> Any:
        decodes[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    source = HttpJwks(auth.url)
    verifier = JwksVerifier(
        auth.url,
        source,
        refresh_interval=INTERVAL,
        refetch_cooldown=COOLDOWN,
        stale_grace=GRACE,
        monotonic=clock,
    )
    yield Setup(verifier, clock, decodes)
    await source.close()


async def refused(verifier: JwksVerifier, token: str) -> bool:
    try:
        await verifier.verify(token)
    except Unauthenticated:
        return True
    return False


async def test_a_withdrawn_key_is_refused_after_the_refresh_even_for_a_cached_token(
    auth: AuthService, setup: Setup
) -> None:
    kept, withdrawn = auth.keys
    old_token, kept_token = auth.token(withdrawn), auth.token(kept, "bob")
    assert (await setup.verifier.verify(old_token)).user_id == "alice"
    assert (await setup.verifier.verify(kept_token)).user_id == "bob"
    assert (auth.fetches, setup.decodes[0]) == (1, 2)
    auth.keys = [kept]
    setup.clock.now += INTERVAL - 1  # not due yet: the remembered verification holds
    assert (await setup.verifier.verify(old_token)).user_id == "alice"
    assert auth.fetches == 1
    setup.clock.now += 1  # due: the key set is fetched again before anything is trusted
    assert await refused(setup.verifier, old_token)
    assert await refused(setup.verifier, auth.token(withdrawn, "carol"))  # new tokens too
    assert auth.fetches == 2
    # The key still published keeps its remembered verifications: no signature check.
    decoded = setup.decodes[0]
    assert (await setup.verifier.verify(kept_token)).user_id == "bob"
    assert setup.decodes[0] == decoded


async def test_a_key_replaced_under_the_same_kid_no_longer_verifies_its_old_tokens(
    auth: AuthService, setup: Setup
) -> None:
    original = auth.keys[0]
    token = auth.token(original)
    assert (await setup.verifier.verify(token)).user_id == "alice"
    replacement = SigningKey.generate()
    replacement.kid = original.kid  # the issuer reused the kid for new key material
    auth.keys = [replacement]
    setup.clock.now += INTERVAL
    assert await refused(setup.verifier, token)
    assert (await setup.verifier.verify(auth.token(replacement, "bob"))).user_id == "bob"


async def test_concurrent_verifications_share_one_fetch_when_the_set_is_due(
    auth: AuthService, setup: Setup
) -> None:
    key = auth.keys[0]
    tokens = [auth.token(key, f"user-{n}") for n in range(50)]
    await setup.verifier.verify(tokens[0])
    setup.clock.now += INTERVAL
    auth.gate.clear()  # the refresh stays in flight while every verification arrives
    auth.arrived.clear()
    pending = [asyncio.ensure_future(setup.verifier.verify(token)) for token in tokens]
    await asyncio.wait_for(auth.arrived.wait(), 5)
    await asyncio.sleep(0.05)  # time for a second fetch to start, were one allowed
    auth.gate.set()
    principals = await asyncio.gather(*pending)
    assert [p.user_id for p in principals] == [f"user-{n}" for n in range(50)]
    assert auth.fetches == 2


@pytest.mark.parametrize(
    "fault",
    [
        lambda: web.Response(status=503),
        lambda: web.Response(body=b"not json", content_type="application/json"),
        lambda: web.json_response([1, 2]),
        lambda: web.json_response({"keys": "none"}),
        lambda: web.Response(body=deep_arrays().encode(), content_type="application/json"),
    ],
    ids=["503", "not-json", "a-list", "no-key-list", "too-deep"],
)
async def test_a_failed_refresh_keeps_the_last_key_set_for_a_bounded_time(
    auth: AuthService, setup: Setup, fault: Callable[[], web.Response]
) -> None:
    key, loaded = auth.keys[0], setup.clock.now
    assert (await setup.verifier.verify(auth.token(key))).user_id == "alice"
    auth.fault = fault
    setup.clock.now += INTERVAL
    for n in range(20):  # every token new: each is checked against the kept keys
        assert (await setup.verifier.verify(auth.token(key, f"user-{n}"))).user_id
    assert auth.fetches == 2  # one failed attempt, not one per request
    setup.clock.now += COOLDOWN
    await setup.verifier.verify(auth.token(key, "dave"))
    assert auth.fetches == 3  # retried once the cooldown is over
    setup.clock.now = loaded + INTERVAL + GRACE  # the kept keys have had their time
    remembered = auth.token(key, "erin")
    assert await refused(setup.verifier, remembered)
    assert auth.fetches == 4
    auth.fault = None
    setup.clock.now += COOLDOWN
    assert (await setup.verifier.verify(remembered)).user_id == "erin"  # back on a fetch
    assert auth.fetches == 5


@pytest.fixture
async def short_refresh_client(
    app_services: Services, http_settings: Settings, auth: AuthService
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    settings = Settings(
        MANA_CREDITS_HOME=http_settings.home,
        MANA_SERVICE_KEY=http_settings.service_key,
        MANA_AUTH_URL=auth.url,
        MANA_CREDITS_JWKS_REFRESH_INTERVAL=0.2,
    )
    app = create_app(settings, services=app_services)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


async def test_the_server_refuses_a_withdrawn_key_after_its_refresh_interval(
    short_refresh_client: TestClient[web.Request, web.Application], auth: AuthService
) -> None:
    kept, withdrawn = auth.keys
    old_token, kept_token = auth.token(withdrawn), auth.token(kept, "bob")
    for token in (old_token, kept_token):
        response = await short_refresh_client.get("/api/v1/credits/balance", headers=bearer(token))
        assert response.status == 200
    auth.keys = [kept]
    await asyncio.sleep(0.25)  # one refresh interval
    response = await short_refresh_client.get("/api/v1/credits/balance", headers=bearer(old_token))
    assert response.status == 401
    body = await response.json()
    assert (body["statusCode"], body["code"]) == (401, "unauthenticated")
    response = await short_refresh_client.get("/api/v1/credits/balance", headers=bearer(kept_token))
    assert response.status == 200


async def test_an_auth_service_that_hangs_does_not_hold_requests_with_keys_at_hand(
    auth: AuthService, setup: Setup
) -> None:
    key = auth.keys[0]
    token = auth.token(key)
    await setup.verifier.verify(token)  # the key set is loaded
    auth.gate.clear()  # from now on the auth service answers nothing
    setup.clock.now += INTERVAL  # a refresh is due
    # Bounded below the fetch's own timeout (5 s): held by the hung fetch, this fails.
    principals = await asyncio.wait_for(
        asyncio.gather(*(setup.verifier.verify(token) for _ in range(20))), 3
    )
    assert {p.user_id for p in principals} == {"alice"}
    assert auth.fetches == 2  # one refresh started, left running, shared by all
    auth.gate.set()  # the auth service answers: the refresh completes in the background
    scheduled = setup.verifier._scheduled
    assert scheduled is not None
    await asyncio.wait_for(scheduled, 10)
