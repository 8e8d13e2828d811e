"""The deployed web app's gift screens: the bodies it sends, the keys it reads.

Each request body below is what the web app's client sends (`credits`, optional
`expiresAt`, `sourceAppId`), and each assertion reads a key one of its screens shows.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from mana_credits_core import TransactionType
from mana_credits_core.services import Services

from .conftest import Jwks, bearer

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def funded(app_services: Services) -> Services:
    await app_services.credits.credit("alice", 1000, TransactionType.GRANT, "funds")
    return app_services


async def post(client: Client, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    response = await client.post(path, json=body, headers=bearer(token))
    return response.status, await response.json()


async def test_create_share_redeem_and_list_as_the_web_app_does(
    client: Client, jwks: Jwks, funded: Services
) -> None:
    alice = jwks.token("alice", email="alice@example.com", name="Alice")
    bob = jwks.token("bob", email="bob@example.com")
    body = {
        "credits": 150,
        "type": "simple",
        "message": "Happy birthday",
        "expiresAt": "2026-03-01T12:00:00.000Z",  # the test clock stands at 1 January 2026
        "sourceAppId": "mana-web",
    }
    status, created = await post(client, "/api/v1/gifts", alice, body)
    assert status == 201, created
    code, url = created["code"], created["url"]
    assert url == created["shortUrl"] == f"http://localhost:3061/g/{code}"
    assert (created["totalCredits"], created["expiresAt"]) == (150, "2026-03-01T12:00:00.000Z")
    entry = (await funded.credits.transactions("alice", limit=1))[0]
    assert (entry.id, entry.amount, entry.app_id) == (
        created["reservationTransactionId"],
        -150,
        "mana-web",
    )

    # The redeem page: a 10-character field, and people type codes as they please.
    assert len(code) <= 10
    typed = f"{code[:5].lower()}-{code[5:]}"
    info = await (await client.get(f"/api/v1/gifts/{typed}")).json()
    assert (info["code"], info["totalCredits"], info["isPersonalized"]) == (code, 150, False)
    assert (info["creatorName"], info["message"], info["status"]) == (
        "Alice",
        "Happy birthday",
        "active",
    )

    await funded.credits.credit("bob", 7, TransactionType.GRANT, "funds")
    status, redeemed = await post(
        client, f"/api/v1/gifts/{typed}/redeem", bob, {"sourceAppId": "mana-web"}
    )
    assert status == 200, redeemed
    assert (redeemed["credits"], redeemed["newBalance"]) == (150, 157)
    assert (redeemed["creatorName"], redeemed["message"]) == ("Alice", "Happy birthday")
    assert (await funded.credits.balance("bob")).balance == 157

    mine = await (await client.get("/api/v1/gifts/me/created", headers=bearer(alice))).json()
    assert [(g["code"], g["url"], g["status"]) for g in mine] == [(code, url, "depleted")]

    # A failed attempt (already claimed) is not a gift received.
    again, _ = await post(client, f"/api/v1/gifts/{code}/redeem", bob, {"sourceAppId": "x"})
    assert again == 400
    received = await (await client.get("/api/v1/gifts/me/received", headers=bearer(bob))).json()
    assert len(received) == 1
    shown = {key: received[0][key] for key in ("code", "credits", "message", "creatorName")}
    assert shown == {
        "code": code,
        "credits": 150,
        "message": "Happy birthday",
        "creatorName": "Alice",
    }
    assert received[0]["redeemedAt"] == received[0]["createdAt"]
    assert received[0]["redeemedAt"].endswith("Z")


async def test_personalized_gift_from_the_web_app(
    client: Client, jwks: Jwks, funded: Services
) -> None:
    alice = jwks.token("alice")
    body = {
        "credits": 40,
        "type": "personalized",
        "targetEmail": "carol@example.com",
        "sourceAppId": "mana-web",
    }
    status, created = await post(client, "/api/v1/gifts", alice, body)
    assert status == 201, created
    assert created["expiresAt"].startswith("2026-04-01")  # no expiry given: 90 days
    info = await (await client.get(f"/api/v1/gifts/{created['code']}")).json()
    assert info["isPersonalized"] is True
    assert "carol@example.com" not in str(info)
    mallory = jwks.token("mallory", email="mallory@example.com")
    wrong, _ = await post(client, f"/api/v1/gifts/{created['code']}/redeem", mallory)
    assert wrong == 403
    listed = await (await client.get("/api/v1/gifts/me/received", headers=bearer(mallory))).json()
    assert listed == []
    carol = jwks.token("carol", email="Carol@Example.com")
    status, redeemed = await post(client, f"/api/v1/gifts/{created['code']}/redeem", carol)
    assert (status, redeemed["credits"], redeemed["newBalance"]) == (200, 40, 40)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-02-01", "2026-02-01T00:00:00.000Z"),  # a date: its midnight UTC, as JS reads it
        ("2026-02-01T10:30:00Z", "2026-02-01T10:30:00.000Z"),
        ("2026-02-01T10:30:00.250+02:00", "2026-02-01T08:30:00.250Z"),
        ("2026-02-01T10:30:00", "2026-02-01T10:30:00.000Z"),  # no offset: UTC
    ],
)
async def test_expires_at_forms(
    client: Client, jwks: Jwks, funded: Services, sent: str, stored: str
) -> None:
    status, created = await post(
        client, "/api/v1/gifts", jwks.token("alice"), {"credits": 5, "expiresAt": sent}
    )
    assert (status, created["expiresAt"]) == (201, stored)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"credits": 10, "totalCredits": 10}, "credits"),
        ({"message": "no amount"}, "totalCredits"),
        ({"credits": 0}, "credits"),
        ({"credits": 10_001}, "credits"),
        ({"credits": 1.5}, "credits"),
        ({"credits": 10, "expiresAt": "2026-02-01", "expirationDays": 30}, "expiresAt"),
        ({"credits": 10, "expiresAt": "2025-12-31"}, "expiresAt"),
        ({"credits": 10, "expiresAt": "2025-12-31T23:59:59.999Z"}, "expiresAt"),
        ({"credits": 10, "expiresAt": "2040-01-01"}, "expiresAt"),
        ({"credits": 10, "expiresAt": "tomorrow"}, "expiresAt"),
        ({"credits": 10, "expiresAt": "9999-12-31T23:59:59-14:00"}, "expiresAt"),
        ({"credits": 10, "expiresAt": "0001-01-01T00:00:00+14:00"}, "expiresAt"),
        ({"credits": 10, "expiresAt": ""}, "expiresAt"),
        ({"credits": 10, "expiresAt": 1767225600}, "expiresAt"),
        ({"credits": 10, "sourceAppId": ""}, "sourceAppId"),
    ],
)
async def test_bad_web_app_bodies_are_400_naming_the_field(
    client: Client, jwks: Jwks, funded: Services, body: dict[str, Any], field: str
) -> None:
    status, answer = await post(client, "/api/v1/gifts", jwks.token("alice"), body)
    assert (status, answer["code"]) == (400, "invalid_input"), answer
    assert answer["details"]["field"] == field, answer
    assert (await funded.credits.balance("alice")).balance == 1000
    assert await funded.gifts.created("alice") == []


async def test_the_openapi_document_describes_what_the_web_app_uses(client: Client) -> None:
    schemas = (await (await client.get("/openapi.json")).json())["components"]["schemas"]
    body = schemas["CreateGiftBody"]["properties"]
    assert {"totalCredits", "credits", "expirationDays", "expiresAt", "sourceAppId"} <= set(body)
    assert schemas["CreateGiftBody"]["allOf"][0]["oneOf"] == [
        {"required": ["totalCredits"]},
        {"required": ["credits"]},
    ]
    assert "isPersonalized" in schemas["GiftInfoOut"]["required"]
    assert {"credits", "newBalance"} <= set(schemas["RedeemOut"]["required"])
    assert "url" in schemas["GiftCodeOut"]["required"]
    received = set(schemas["GiftRedemptionOut"]["required"])
    assert {"code", "credits", "message", "creatorName", "redeemedAt"} <= received
