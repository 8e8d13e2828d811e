"""DELETE /internal/credits/balance/:userId end to end: a user who bought credits
through the real stripe SDK (fake Stripe server), gave and received gifts, spent,
reserved and pays for Cloud Sync is deleted; no route, no table mentions them after."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core import TransactionType
from mana_credits_core.purchases import Package
from mana_credits_core.services import Services

from ..contract.test_user_deletion import credits_in_existence, mentions
from ..fakes.stripe_server import FakeStripe, paid
from .conftest import Jwks, bearer, service
from .test_purchases import (  # noqa: F401 - fixtures shared with the purchase tests
    buy,
    client,
    deliver,
    fake_stripe,
    package,
    shop,
    shop_settings,
)

Client = TestClient[web.Request, web.Application]
ZELDA = "zelda-7f3a91"
EMAIL = "Zelda.Quist@example.org"
SECRETS = (ZELDA, EMAIL.lower(), "Zelda Quist", "For Bob, love Zelda", "Welcome Zelda", "zproj")
DELETE = f"/api/v1/internal/credits/balance/{ZELDA}"


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


@pytest.fixture
async def zelda(
    client: Client,  # noqa: F811
    shop: Services,  # noqa: F811
    package: Package,  # noqa: F811
    jwks: Jwks,
    fake_stripe: FakeStripe,  # noqa: F811
) -> str:
    token = jwks.token(ZELDA, email=EMAIL, name="Zelda Quist")
    await buy(client, token, package)
    intent = next(iter(fake_stripe.intents.values()))
    assert await deliver(client, paid(fake_stripe, intent)) == 200
    await shop.credits.credit("alice", 500, TransactionType.GRANT, "funds")
    alice = bearer(jwks.token("alice"))
    mine = bearer(token)

    gift = await ok(
        await client.post(
            "/api/v1/gifts",
            json={"totalCredits": 100, "message": "For Bob, love Zelda"},
            headers=mine,
        ),
        201,
    )
    await ok(
        await client.post(f"/api/v1/gifts/{gift['code']}/redeem", headers=bearer(jwks.token("bob")))
    )
    await ok(
        await client.post(
            "/api/v1/gifts", json={"totalCredits": 40, "message": "Zelda Quist"}, headers=mine
        ),
        201,
    )
    to_zelda = {
        "totalCredits": 70,
        "type": "personalized",
        "targetEmail": EMAIL,
        "message": "Welcome Zelda",
    }
    await ok(await client.post("/api/v1/gifts", json=to_zelda, headers=alice), 201)
    pending = await ok(
        await client.post(
            "/api/v1/internal/gifts/redeem-pending",
            json={"userId": ZELDA, "email": EMAIL},
            headers=service(),
        )
    )
    assert pending["redeemed"] == 1
    use = {
        "amount": 25,
        "appId": "render",
        "description": "zproj render",
        "metadata": {"p": "zproj"},
    }
    await ok(await client.post("/api/v1/credits/use", json=use, headers=mine))
    hold = {"userId": ZELDA, "amount": 50, "reason": "zproj render"}
    await ok(await client.post("/api/v1/internal/credits/reserve", json=hold, headers=service()))
    await ok(await client.post("/api/v1/sync/activate", json={}, headers=mine))
    return token


async def test_deletion_over_http(
    client: Client,  # noqa: F811
    shop: Services,  # noqa: F811
    sql_store: SqlStore,
    jwks: Jwks,
    zelda: str,
) -> None:
    assert await mentions(sql_store, SECRETS)  # the search sees what is there
    before = await credits_in_existence(shop)
    bought = await shop.purchases.all_purchases(10)
    refused = await client.delete(DELETE)
    assert refused.status == 401

    answer = await ok(await client.delete(DELETE, headers=service()))
    assert answer["success"] is True
    assert answer["deletedCount"] > 0
    assert set(answer) == {"success", "deletedCount"}
    assert await ok(await client.delete(DELETE, headers=service())) == {
        "success": True,
        "deletedCount": 0,
    }
    unknown = await client.delete("/api/v1/internal/credits/balance/nobody", headers=service())
    assert await ok(unknown) == {"success": True, "deletedCount": 0}
    bad = await client.delete(f"{DELETE}?email=nope", headers=service())
    assert bad.status == 400

    # Every text column of every table, searched in SQL.
    assert await mentions(sql_store, SECRETS) == []
    # Only zelda's spendable balance left: 1100 + 70 - 100 - 40 - 25 - 50 - 30 = 925,
    # plus the reservation (50) and the unredeemed gift (40), returned then forfeited.
    assert await credits_in_existence(shop) == before - (925 + 50 + 40)
    after = await shop.purchases.all_purchases(10)
    assert [(p.credits, p.price_euro_cents, p.status) for p in after] == [
        (p.credits, p.price_euro_cents, p.status) for p in bought
    ]
    assert (await shop.reconcile.run()).ok

    # What every route answers about, or near, zelda mentions none of it.
    admin = bearer(jwks.token("root", role="admin"))
    reads = [
        ("/api/v1/credits/transactions", bearer(zelda)),
        ("/api/v1/credits/purchases", bearer(zelda)),
        ("/api/v1/gifts/me/created", bearer(zelda)),
        ("/api/v1/gifts/me/received", bearer(zelda)),
        ("/api/v1/sync/status", bearer(zelda)),
        ("/api/v1/gifts/me/received", bearer(jwks.token("bob"))),
        ("/api/v1/credits/transactions", bearer(jwks.token("bob"))),
        ("/api/v1/gifts/me/created", bearer(jwks.token("alice"))),
        (f"/api/v1/admin/sync/{ZELDA}", admin),
        (f"/api/v1/internal/sync/status/{ZELDA}", service()),
        ("/api/v1/credits/balance", bearer(zelda)),  # last: it creates a zero balance
    ]
    for path, headers in reads:
        body = json.dumps(await ok(await client.get(path, headers=headers))).lower()
        assert not [s for s in SECRETS if s.lower() in body], path
    for gift in await shop.gifts.recent(100):
        body = json.dumps(await ok(await client.get(f"/api/v1/gifts/{gift.code}"))).lower()
        assert not [s for s in SECRETS if s.lower() in body], gift.code
    assert await ok(await client.get("/api/v1/credits/transactions", headers=bearer(zelda))) == []
    balance = await ok(
        await client.get(f"/api/v1/internal/credits/balance/{ZELDA}", headers=service())
    )
    assert (balance["balance"], balance["totalEarned"], balance["totalSpent"]) == (0, 0, 0)
