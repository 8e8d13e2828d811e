"""Gift routes over HTTP: shapes, errors, rate limiting of code guessing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.settings import Settings
from mana_credits_core import TransactionType
from mana_credits_core.services import Services
from mana_credits_http import create_app

from .conftest import Jwks, bearer, service, settings_like

Client = TestClient[web.Request, web.Application]
GIFT_KEYS = {
    "id",
    "code",
    "shortUrl",
    "url",
    "creatorId",
    "creatorName",
    "totalCredits",
    "redeemed",
    "type",
    "status",
    "targetEmail",
    "message",
    "expiresAt",
    "reservationTransactionId",
    "createdAt",
    "updatedAt",
}


async def create(client: Client, token: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/gifts", json=body, headers=bearer(token))
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


@pytest.fixture
async def funded(app_services: Services) -> Services:
    await app_services.credits.credit("alice", 1000, TransactionType.GRANT, "funds")
    return app_services


async def test_create_redeem_and_lists(client: Client, jwks: Jwks, funded: Services) -> None:
    alice = jwks.token("alice", email="alice@example.com", name="Alice")
    gift = await create(client, alice, totalCredits=250, message="Enjoy")
    assert set(gift) == GIFT_KEYS
    assert gift["shortUrl"] == gift["url"] == f"http://localhost:3061/g/{gift['code']}"
    assert (gift["redeemed"], gift["type"], gift["status"]) == (0, "simple", "active")
    assert gift["creatorName"] == "Alice"

    info = await client.get(f"/api/v1/gifts/{gift['code'].lower()}")
    assert await info.json() == {
        "code": gift["code"],
        "type": "simple",
        "status": "active",
        "totalCredits": 250,
        "redeemed": False,
        "isPersonalized": False,
        "message": "Enjoy",
        "creatorName": "Alice",
        "expiresAt": gift["expiresAt"],
    }
    bob = jwks.token("bob")
    redeemed = await client.post(
        f"/api/v1/gifts/{gift['code']}/redeem", json={"sourceAppId": "chat"}, headers=bearer(bob)
    )
    assert await redeemed.json() == {
        "success": True,
        "creditsReceived": 250,
        "credits": 250,
        "message": "Enjoy",
        "creatorName": "Alice",
        "newBalance": 250,
    }
    again = await client.post(f"/api/v1/gifts/{gift['code']}/redeem", headers=bearer(bob))
    assert (again.status, (await again.json())["message"]) == (400, "Gift already claimed")

    mine = await (await client.get("/api/v1/gifts/me/created", headers=bearer(alice))).json()
    assert [(g["id"], g["status"], g["redeemed"]) for g in mine] == [(gift["id"], "depleted", 1)]
    assert [g["url"] for g in mine] == [gift["shortUrl"]]
    received = await (await client.get("/api/v1/gifts/me/received", headers=bearer(bob))).json()
    assert [r["status"] for r in received] == ["success"]  # the failed second try is not listed
    assert set(received[0]) == {
        "id",
        "giftCodeId",
        "redeemerUserId",
        "status",
        "creditsReceived",
        "creditTransactionId",
        "sourceAppId",
        "createdAt",
        "code",
        "credits",
        "message",
        "creatorName",
        "redeemedAt",
    }
    assert received[0]["redeemedAt"] == received[0]["createdAt"]
    assert (await funded.credits.balance("bob")).balance == 250


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("N" * 300, "N" * 255),  # the stored bound; PostgreSQL answered 500 past it
        ("Al\x00ice\n\t Smith ", "Al ice Smith"),  # NUL: PostgreSQL text refuses it
        ("alice@example.com", "a***"),  # an address is never shown
        (" \x07 ", "a***"),  # nothing left: the masked e-mail address, as without a name
        ("\ud800Al\u2028ice", "Al ice"),  # a lone surrogate: no store keeps it
        ("Alice <alice@example.com>", "Alice <a***>"),  # an address inside is masked
    ],
)
async def test_the_token_name_is_made_fit_to_show_as_the_creator(
    client: Client, jwks: Jwks, funded: Services, name: str, shown: str
) -> None:
    alice = jwks.token("alice", email="alice@example.com", name=name)
    gift = await create(client, alice, totalCredits=5)
    assert gift["creatorName"] == shown
    info = await (await client.get(f"/api/v1/gifts/{gift['code']}")).json()
    assert info["creatorName"] == shown
    bob = jwks.token("bob")
    redeemed = await client.post(f"/api/v1/gifts/{gift['code']}/redeem", headers=bearer(bob))
    assert (await redeemed.json())["creatorName"] == shown
    history = await funded.credits.transactions("bob")
    assert [e.description for e in history] == [f"Gift from {shown}"]


async def test_create_errors(client: Client, jwks: Jwks, funded: Services) -> None:
    alice = jwks.token("alice")
    short = await client.post("/api/v1/gifts", json={"totalCredits": 1001}, headers=bearer(alice))
    body = await short.json()
    assert (short.status, body["message"]) == (400, "Insufficient credits to create gift")
    assert body["details"] == {"required": 1001, "available": 1000}
    for bad in (
        {"totalCredits": 10, "type": "personalized"},
        {"totalCredits": 10_001},
        {"totalCredits": "10"},
        {"totalCredits": 10, "expirationDays": 0},
        {},
        {"credits": 10, "totalCredits": 10},
        {"credits": "10"},
        {"credits": 10, "expiresAt": "2026-02-01", "expirationDays": 30},
        {"credits": 10, "expiresAt": "2025-12-31"},
        {"credits": 10, "expiresAt": "2025-12-31T23:59:59Z"},
        {"credits": 10, "expiresAt": "next week"},
        {"credits": 10, "expiresAt": 1767225600},
        {"totalCredits": 10, "message": "x" * 501},
    ):
        response = await client.post("/api/v1/gifts", json=bad, headers=bearer(alice))
        assert response.status == 400, bad
    assert (await funded.credits.balance("alice")).balance == 1000
    assert (await client.post("/api/v1/gifts", json={"totalCredits": 1})).status == 401


async def test_personalized_gift_wrong_user_is_403(
    client: Client, jwks: Jwks, funded: Services
) -> None:
    gift = await create(
        client,
        jwks.token("alice"),
        totalCredits=50,
        type="personalized",
        targetEmail="bob@example.com",
    )
    assert gift["targetEmail"] == "bob@example.com"
    info = await (await client.get(f"/api/v1/gifts/{gift['code']}")).json()
    assert "bob@example.com" not in str(info)
    wrong = await client.post(
        f"/api/v1/gifts/{gift['code']}/redeem",
        headers=bearer(jwks.token("mallory", email="mallory@example.com")),
    )
    assert wrong.status == 403
    assert (await wrong.json())["code"] == "gift_wrong_user"
    right = await client.post(
        f"/api/v1/gifts/{gift['code']}/redeem",
        headers=bearer(jwks.token("bob", email="BOB@example.com")),
    )
    assert right.status == 200


async def test_cancel(client: Client, jwks: Jwks, funded: Services) -> None:
    alice = jwks.token("alice")
    gift = await create(client, alice, totalCredits=300)
    other = await client.delete(f"/api/v1/gifts/{gift['id']}", headers=bearer(jwks.token("bob")))
    assert other.status == 404
    cancelled = await client.delete(f"/api/v1/gifts/{gift['id']}", headers=bearer(alice))
    assert await cancelled.json() == {"success": True, "refundedCredits": 300}
    twice = await client.delete(f"/api/v1/gifts/{gift['id']}", headers=bearer(alice))
    assert (twice.status, (await twice.json())["message"]) == (
        400,
        "Only active gifts can be cancelled",
    )
    redeem = await client.post(
        f"/api/v1/gifts/{gift['code']}/redeem", headers=bearer(jwks.token("bob"))
    )
    assert (redeem.status, (await redeem.json())["message"]) == (400, "Gift code is cancelled")
    assert (await funded.credits.balance("alice")).balance == 1000


async def test_redeem_pending_reports_what_succeeded(
    client: Client, jwks: Jwks, funded: Services
) -> None:
    alice = jwks.token("alice")
    for credits in (10, 20):
        await create(
            client, alice, totalCredits=credits, type="personalized", targetEmail="new@x.io"
        )
    body = {"userId": "newcomer", "email": "New@X.io"}
    first = await client.post("/api/v1/internal/gifts/redeem-pending", json=body, headers=service())
    assert await first.json() == {"redeemed": 2, "totalCredits": 30}
    second = await client.post(
        "/api/v1/internal/gifts/redeem-pending", json=body, headers=service()
    )
    assert await second.json() == {"redeemed": 0, "totalCredits": 0}
    bad = await client.post(
        "/api/v1/internal/gifts/redeem-pending",
        json={"userId": "x", "email": "nope"},
        headers=service(),
    )
    assert bad.status == 400
    assert (await funded.reconcile.run()).ok


async def test_unknown_codes_are_404_then_rate_limited(
    jwks: Jwks, app_services: Services, http_settings: Settings, tmp_path: Path
) -> None:
    settings = settings_like(
        http_settings,
        MANA_CREDITS_GIFT_FAILURES=5,
    )
    app = create_app(settings, services=app_services)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        statuses = []
        for i in range(7):
            response = await client.get(f"/api/v1/gifts/GUESS{i:07d}")
            statuses.append(response.status)
        assert statuses == [404] * 5 + [429] * 2
        body = await (await client.get("/api/v1/gifts/ANOTHERGUESS")).json()
        assert (body["statusCode"], body["code"]) == (429, "rate_limited")
        # A signed-in redeem counts against its user, not the blocked address.
        redeem = await client.post(
            "/api/v1/gifts/ANOTHERGUESS/redeem", headers=bearer(jwks.token())
        )
        assert redeem.status == 404


async def test_codes_look_like_codes(client: Client, jwks: Jwks, funded: Services) -> None:
    gift = await create(client, jwks.token("alice"), totalCredits=1)
    # Crockford's base32 less 0 and 1: no I, L, O, U, 0 or 1.
    assert re.fullmatch(r"[2-9A-HJKMNP-TV-Z]{10}", gift["code"])
    spaced = f"{gift['code'][:5].lower()}%20{gift['code'][5:]}"  # typed with a space
    assert (await (await client.get(f"/api/v1/gifts/{spaced}")).json())["code"] == gift["code"]
    weird = await client.get("/api/v1/gifts/%00%01")
    assert weird.status in (400, 404)


@pytest.mark.parametrize("address", ["a\x00lice@example.com", "\ud800@example.com"])
async def test_an_unusable_email_claim_is_no_address(
    client: Client, jwks: Jwks, funded: Services, address: str
) -> None:
    alice = jwks.token("alice", email=address, name="")
    gift = await create(client, alice, totalCredits=5)
    assert gift["creatorName"] == "A Mana user"  # no address to mask
    records = await funded.users.records("alice")
    assert records.email is None  # not recorded for the console either
