"""Races across processes: `mana-credits serve --workers 3` on PostgreSQL (three
processes, three pools, three debit writers) and storms of concurrent requests aimed at
the same money on every money-moving route. Each storm has exactly the outcome the
contract allows, balances are exact and reconcile finds no drift.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core.services import ReconcileService, Services

from ..conftest import truncate
from ..fakes.stripe_server import SECRET_KEY as STRIPE_KEY
from ..fakes.stripe_server import (
    WEBHOOK_SECRET,
    FakeStripe,
    paid,
    sign,
    start_fake_stripe,
)
from ..postgres import free_port
from .server import KEY, AuthService, fund, serving

pytestmark = pytest.mark.postgres

STORM = 30  # concurrent requests per race


class Caller:
    """Requests to the workers as a service, as a user, or as Stripe."""

    def __init__(self, http: aiohttp.ClientSession, base: str, auth: AuthService) -> None:
        self.http, self.base, self.auth = http, base, auth

    async def __call__(
        self, method: str, path: str, body: Any = None, *, user: str | None = None
    ) -> tuple[int, Any]:
        headers = {"X-Service-Key": KEY}
        if user is not None:
            headers = {"Authorization": f"Bearer {self.auth.token(user)}"}
        async with self.http.request(
            method, self.base + "/api/v1" + path, json=body, headers=headers
        ) as response:
            return response.status, await response.json()

    async def storm(
        self, method: str, path: str, bodies: list[Any], users: Sequence[str | None] | None = None
    ) -> list[tuple[int, Any]]:
        who = users or [None] * len(bodies)
        calls = (self(method, path, body, user=u) for body, u in zip(bodies, who, strict=True))
        return await asyncio.gather(*calls)

    async def balance(self, user: str) -> int:
        status, body = await self("GET", f"/internal/credits/balance/{user}")
        assert status == 200, body
        return int(body["balance"])

    async def fund(self, user: str, amount: int) -> None:
        await fund(self.http, self.base, [user], amount)


@pytest.fixture(scope="module")
async def stripe() -> AsyncIterator[FakeStripe]:
    fake, server = await start_fake_stripe()
    yield fake
    await server.close()


@pytest.fixture(scope="module")
async def races_store(pg_store: SqlStore) -> SqlStore:
    await truncate(pg_store)
    return pg_store


@pytest.fixture(scope="module")
def shop(races_store: SqlStore, tmp_path_factory: pytest.TempPathFactory) -> Services:
    return build_services(races_store, Settings(MANA_CREDITS_HOME=tmp_path_factory.mktemp("shop")))


@pytest.fixture(scope="module")
async def call(
    pg_url: str,
    races_store: SqlStore,
    tmp_path_factory: pytest.TempPathFactory,
    module_auth: AuthService,
    stripe: FakeStripe,
) -> AsyncIterator[Caller]:
    """Three workers for the whole module; each race uses users of its own."""
    auth, tmp_path, port = module_auth, tmp_path_factory.mktemp("races"), free_port()
    env = {
        "MANA_AUTH_URL": auth.url,
        "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe.url,
    }
    connector = aiohttp.TCPConnector(limit=STORM * 2, force_close=True)  # spread over workers
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        serving(pg_url, tmp_path, port, workers=3, **env),
    ):
        yield Caller(http, f"http://127.0.0.1:{port}", auth)
    assert (await ReconcileService(races_store).run()).ok


async def test_one_key_from_many_callers_is_one_debit_and_one_refund(call: Caller) -> None:
    await call.fund("ann", 1000)
    body = {
        "userId": "ann",
        "amount": 7,
        "appId": "chat",
        "description": "d",
        "idempotencyKey": "k",
    }
    back = {"userId": "ann", "amount": 5, "description": "back", "idempotencyKey": "r"}
    debits, refunds = await asyncio.gather(
        call.storm("POST", "/internal/credits/use", [body] * STORM),
        call.storm("POST", "/internal/credits/refund", [back] * STORM),
    )
    for answers in (debits, refunds):
        assert {status for status, _ in answers} == {200}
        assert len({answer["transaction"]["id"] for _, answer in answers}) == 1
    assert await call.balance("ann") == 998


async def test_mixed_spending_never_overdraws(call: Caller) -> None:
    await call.fund("bob", 100)
    use = {"userId": "bob", "amount": 10, "appId": "chat", "description": "d"}
    hold = {"userId": "bob", "amount": 10, "reason": "render"}
    bobs = ["bob"] * STORM
    used, held, gifted, synced = await asyncio.gather(
        call.storm("POST", "/internal/credits/use", [use] * STORM),
        call.storm("POST", "/internal/credits/reserve", [hold] * STORM),
        call.storm("POST", "/gifts", [{"totalCredits": 10}] * STORM, bobs),
        call.storm("POST", "/sync/activate", [{}] * 5, bobs[:5]),
    )
    assert {s for s, _ in used + held} <= {200, 402}
    assert {s for s, _ in gifted} <= {201, 400}
    assert {s for s, _ in synced} <= {200, 400, 402}
    spent = 10 * sum(s == 200 for s, _ in used + held) + 10 * sum(s == 201 for s, _ in gifted)
    spent += 30 * sum(s == 200 for s, _ in synced)
    left = await call.balance("bob")
    assert left == 100 - spent
    assert 0 <= left < 10, "a refusal means the money was gone, not lost"


async def test_commit_racing_release_has_one_winner_per_reservation(call: Caller) -> None:
    await call.fund("cy", 200)
    held = await call.storm("POST", "/internal/credits/reserve",
                            [{"userId": "cy", "amount": 20, "reason": "r"}] * 10)  # fmt: skip
    ids = [answer["reservationId"] for _, answer in held]
    commits = call.storm(
        "POST", "/internal/credits/commit", [{"reservationId": i} for i in ids] * 3
    )
    releases = call.storm(
        "POST", "/internal/credits/refund-reservation", [{"reservationId": i} for i in ids] * 3
    )
    committed, released = await asyncio.gather(commits, releases)
    wins = [status == 200 for status, _ in committed + released]
    assert sum(wins) == len(ids), "each reservation ends once"
    assert {status for status, _ in committed + released} <= {200, 400}
    spent = 20 * sum(status == 200 for status, _ in committed)
    assert await call.balance("cy") == 200 - spent


async def test_many_users_racing_for_one_gift_and_its_cancel(call: Caller) -> None:
    await call.fund("giver", 100)
    _, gift = await call("POST", "/gifts", {"totalCredits": 50}, user="giver")
    racers = [f"racer-{n}" for n in range(STORM)]
    redeem = call.storm("POST", f"/gifts/{gift['code']}/redeem", [{}] * STORM, racers)
    cancel = call("DELETE", f"/gifts/{gift['id']}", user="giver")
    redeemed, (cancelled, _) = await asyncio.gather(redeem, cancel)
    winners = sum(status == 200 for status, _ in redeemed) + (cancelled == 200)
    assert winners == 1, "the gift is redeemed or cancelled, once"
    assert {status for status, _ in redeemed} <= {200, 400}
    total = await call.balance("giver") + sum([await call.balance(r) for r in racers])
    assert total == 100


async def test_registration_racing_itself_redeems_each_gift_once(call: Caller) -> None:
    await call.fund("aunt", 90)
    for credits in (10, 20, 30):
        body = {"totalCredits": credits, "type": "personalized", "targetEmail": "dee@example.com"}
        assert (await call("POST", "/gifts", body, user="aunt"))[0] == 201
    body = {"userId": "dee", "email": "dee@example.com"}
    answers = await call.storm("POST", "/internal/gifts/redeem-pending", [body] * STORM)
    assert {status for status, _ in answers} == {200}
    assert sum(answer["totalCredits"] for _, answer in answers) == 60
    assert sum(answer["redeemed"] for _, answer in answers) == 3
    assert await call.balance("dee") == 60


async def test_sync_activated_from_many_tabs_is_charged_once(call: Caller) -> None:
    await call.fund("eve", 100)
    answers = await call.storm("POST", "/sync/activate", [{}] * STORM, ["eve"] * STORM)
    assert Counter(status for status, _ in answers) == {200: 1, 400: STORM - 1}
    assert await call.balance("eve") == 70


async def test_a_payment_delivered_by_many_webhooks_is_credited_once(
    call: Caller, shop: Services, stripe: FakeStripe
) -> None:
    package = await shop.purchases.add_package("Plus", 1100, 1000)
    status, started = await call("POST", "/credits/purchase", {"packageId": package.id}, user="fay")
    assert status == 200, started
    intent = stripe.intents[started["clientSecret"].split("_secret_")[0]]
    payload = paid(stripe, intent)
    headers = {"Content-Type": "application/json", "Stripe-Signature": sign(payload)}

    async def deliver() -> int:
        async with call.http.post(
            call.base + "/api/v1/webhooks/stripe", data=payload, headers=headers
        ) as response:
            assert json.loads(await response.read()) == {"received": True}
            return response.status

    assert set(await asyncio.gather(*(deliver() for _ in range(STORM)))) == {200}
    assert await call.balance("fay") == 1100


async def test_one_reward_asked_for_by_many_callers_is_granted_once(call: Caller) -> None:
    body = {"userId": "gil", "amount": 40, "reason": "feedback", "referenceId": "fb-9"}
    answers = await call.storm("POST", "/internal/credits/grant", [body] * STORM)
    assert {status for status, _ in answers} == {200}
    assert sum(answer["alreadyGranted"] is False for _, answer in answers) == 1
    assert len({answer["transactionId"] for _, answer in answers}) == 1
    assert {answer["newBalance"] for _, answer in answers} == {40}
    status, summary = await call("GET", "/internal/credits/balance/gil")
    assert (status, summary["balance"], summary["transactionsCount"]) == (200, 40, 1)
