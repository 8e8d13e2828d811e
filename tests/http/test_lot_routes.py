"""Credit lots over HTTP: a grant's expiry and priority, the user's and the internal
listing of open lots, and bad values refused with nothing changed."""

from __future__ import annotations

from typing import Any

import pytest

from mana_credits_core.services import Services

from .conftest import Jwks, bearer, service
from .metrics_reading import Client

GRANT = "/api/v1/internal/credits/grant"
MINE = "/api/v1/credits/lots"
INTERNAL = "/api/v1/internal/credits/lots/"
LOT_KEYS = {"id", "source", "amount", "remaining", "priority", "expiresAt", "createdAt"}
PROMO_END = "2026-03-31T23:59:59Z"  # the test clock starts on 2026-01-01


def reward(ref: str, amount: int, **extra: Any) -> dict[str, Any]:
    body = {"userId": "alice", "amount": amount, "reason": "promo", "referenceId": ref}
    return body | extra


async def listed(client: Client, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get(path, headers=headers)
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"lots"}
    lots: list[dict[str, Any]] = body["lots"]
    return lots


async def test_a_grant_with_expiry_and_priority_shows_in_both_listings(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    plain = await client.post(GRANT, json=reward("r-1", 40), headers=service())
    promo = await client.post(
        GRANT, json=reward("r-2", 25, expiresAt=PROMO_END, priority=20), headers=service()
    )
    assert (plain.status, promo.status) == (200, 200)
    promo_id = (await promo.json())["transactionId"]
    plain_id = (await plain.json())["transactionId"]
    await app_services.credits.use("alice", 5, "chat", "spend")  # from the promo: priority 20

    mine = await listed(client, MINE, bearer(jwks.token("alice")))
    internal = await listed(client, INTERNAL + "alice", service())

    assert mine == internal
    assert [set(lot) for lot in mine] == [LOT_KEYS, LOT_KEYS]
    first, second = mine  # burn order: priority 20 before the default 50
    assert first == {
        "id": promo_id,
        "source": "grant",
        "amount": 25,
        "remaining": 20,
        "priority": 20,
        "expiresAt": "2026-03-31T23:59:59.000Z",
        "createdAt": first["createdAt"],
    }
    assert first["createdAt"].startswith("2026-01-01T")
    assert first["createdAt"].endswith("Z")
    assert (second["id"], second["amount"], second["remaining"]) == (plain_id, 40, 40)
    assert (second["priority"], second["expiresAt"]) == (50, None)


async def test_spent_lots_and_other_users_lots_are_not_listed(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    await app_services.credits.grant("alice", 10, "spent", "ops")
    await app_services.credits.use("alice", 10, "chat", "all of it")
    await app_services.credits.grant("bob", 7, "bob's", "ops")

    assert await listed(client, MINE, bearer(jwks.token("alice"))) == []
    assert await listed(client, INTERNAL + "alice", service()) == []
    [bobs] = await listed(client, MINE, bearer(jwks.token("bob")))
    assert (bobs["amount"], bobs["remaining"]) == (7, 7)
    assert await listed(client, MINE, bearer(jwks.token("carol"))) == []
    assert await listed(client, INTERNAL + "nobody", service()) == []


async def test_listings_need_their_credentials(client: Client, jwks: Jwks) -> None:
    assert (await client.get(MINE)).status == 401
    assert (await client.get(MINE, headers=service())).status == 401
    assert (await client.get(INTERNAL + "alice")).status == 401
    wrong = await client.get(INTERNAL + "alice", headers=bearer(jwks.token("alice")))
    assert wrong.status == 401


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("expiresAt", {"expiresAt": "2025-06-01T00:00:00Z"}),  # in the past
        ("expiresAt", {"expiresAt": "2026-03-31"}),  # a date alone
        ("expiresAt", {"expiresAt": "2026-03-31T23:59:59"}),  # no time zone
        ("expiresAt", {"expiresAt": "next month"}),
        ("expiresAt", {"expiresAt": 1800000000}),  # seconds are not a date
        ("expiresAt", {"expiresAt": "2026-02-30T10:00:00Z"}),
        ("expiresAt", {"expiresAt": "9999-12-31T23:59:59-14:00"}),  # past year 9999 in UTC
        ("expiresAt", {"expiresAt": "9999-12-31T23:59:59Z"}),  # beyond 3,660 days
        ("expiresAt", {"expiresAt": "2040-01-01T00:00:00Z"}),
        ("priority", {"priority": -1}),
        ("priority", {"priority": 101}),
        ("priority", {"priority": "10"}),
        ("priority", {"priority": 2.5}),
        ("priority", {"priority": True}),
    ],
)
async def test_bad_expiry_or_priority_is_400_naming_it_and_changes_nothing(
    client: Client, app_services: Services, field: str, change: dict[str, Any]
) -> None:
    response = await client.post(GRANT, json=reward("r-bad", 25) | change, headers=service())
    assert response.status == 400
    body = await response.json()
    assert body["code"] == "invalid_input"
    assert body["details"]["field"] == field
    assert field in body["message"]
    assert await app_services.credits.transactions("alice") == []
    assert await app_services.lots.of_user("alice") == []


async def test_the_routes_and_grant_fields_are_in_the_openapi_document(client: Client) -> None:
    document = await (await client.get("/openapi.json")).json()
    assert "get" in document["paths"]["/api/v1/credits/lots"]
    assert "get" in document["paths"]["/api/v1/internal/credits/lots/{user_id}"]
    grant = document["paths"][GRANT]["post"]
    schema = grant["requestBody"]["content"]["application/json"]["schema"]
    text = str(document["components"]) + str(schema)
    assert "expiresAt" in text
    assert "priority" in text
