"""Authorization for every route, generated from the route table: each refuses the wrong
credential, and each route that names an object by id answers another user's object as
if it did not exist (404) and leaves it unchanged."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from mana_credits_core.services import Services
from mana_credits_http import ROUTES
from mana_credits_http.routes import Route

from .conftest import Jwks, bearer, service

Client = TestClient[web.Request, web.Application]
PARAMETER = re.compile(r"\{[a-z_]+\}")


def concrete(path: str) -> str:
    return PARAMETER.sub("some-id", path)


def label(route: Route) -> str:
    return f"{route.method} {route.path}"


async def status(client: Client, route: Route, headers: dict[str, str]) -> int:
    response = await client.request(
        route.method, concrete(route.path), json={} if route.method != "GET" else None,
        headers=headers,
    )  # fmt: skip
    body = await response.json()
    if response.status == 403:  # the old service's admin refusal, kept for its clients
        assert body == {"error": "Forbidden", "message": "Admin access required"}
    else:
        assert body["statusCode"] == response.status  # the error envelope
    return response.status


GUARDED = [r for r in ROUTES if r.auth in ("user", "admin", "service")]


@pytest.mark.parametrize("route", GUARDED, ids=[label(r) for r in GUARDED])
async def test_every_guarded_route_refuses_the_wrong_credential(
    client: Client, jwks: Jwks, route: Route
) -> None:
    user, admin = bearer(jwks.token("mallory")), bearer(jwks.token("root", role="admin"))
    assert await status(client, route, {}) == 401
    if route.auth == "user":
        assert await status(client, route, service()) == 401
    elif route.auth == "admin":
        assert await status(client, route, user) == 403
        assert await status(client, route, service()) == 401
    else:
        assert await status(client, route, user) == 401
        assert await status(client, route, admin) == 401


def test_the_public_routes_are_exactly_these() -> None:
    public = {label(r) for r in ROUTES if r.auth == "none"}
    assert public == {
        "GET /health",
        "GET /health/ready",
        "GET /metrics",
        "GET /api/v1/credits/packages",
        "GET /api/v1/credits/prices",  # the price list, shown before signing in
        "GET /api/v1/gifts/{code}",  # the code is the secret: GiftInfo, no e-mail
        "GET /g/{code}",  # the same information as a page, behind the same guess limit
    }
    webhooks = {label(r) for r in ROUTES if r.auth == "stripe-signature"}
    assert webhooks == {"POST /api/v1/webhooks/stripe"}


# Every route with an id in its path, and why a caller may reach that object.
OWNED = {"GET /api/v1/credits/purchase/{purchase_id}", "DELETE /api/v1/gifts/{gift_id}"}
CAPABILITY = {"GET /api/v1/gifts/{code}", "POST /api/v1/gifts/{code}/redeem", "GET /g/{code}"}


def test_every_route_with_an_id_has_an_ownership_rule() -> None:
    with_ids = {label(r) for r in ROUTES if PARAMETER.search(r.path)}
    trusted = {label(r) for r in ROUTES if PARAMETER.search(r.path) and r.auth != "user"}
    trusted -= CAPABILITY
    assert all(label(r).split()[1].startswith("/api/v1/internal/") or r.auth == "admin"
               for r in ROUTES if label(r) in trusted)  # fmt: skip
    # A new route with an id must be added to OWNED (and to OWNERS below) or be a
    # capability, before this passes.
    assert with_ids == OWNED | CAPABILITY | trusted


Owner = Callable[[Client, Services, Jwks], Awaitable[tuple[str, Callable[[], Awaitable[None]]]]]


async def alices_purchase(
    client: Client, services: Services, jwks: Jwks
) -> tuple[str, Callable[[], Awaitable[None]]]:
    package = await services.purchases.add_package("Plus", 1100, 1000)
    started = await client.post(
        "/api/v1/credits/purchase", json={"packageId": package.id}, headers=bearer(jwks.token())
    )
    purchase_id = (await started.json())["purchaseId"]

    async def unchanged() -> None:
        found = await services.purchases.get(purchase_id)
        assert found.status == "pending"

    return f"/api/v1/credits/purchase/{purchase_id}", unchanged


async def alices_gift(
    client: Client, services: Services, jwks: Jwks
) -> tuple[str, Callable[[], Awaitable[None]]]:
    await services.credits.refund("alice", 100, "funds")
    created = await client.post(
        "/api/v1/gifts", json={"totalCredits": 40}, headers=bearer(jwks.token())
    )
    gift = await created.json()

    async def unchanged() -> None:
        assert (await services.gifts.info(gift["code"])).status == "active"
        assert (await services.credits.balance("alice")).balance == 60

    return f"/api/v1/gifts/{gift['id']}", unchanged


OWNERS: dict[str, Owner] = {
    "GET /api/v1/credits/purchase/{purchase_id}": alices_purchase,
    "DELETE /api/v1/gifts/{gift_id}": alices_gift,
}


@pytest.mark.parametrize("name", sorted(OWNED))
async def test_another_users_object_is_not_found_and_unchanged(
    client: Client, app_services: Services, jwks: Jwks, name: str
) -> None:
    method = name.split()[0]
    path, unchanged = await OWNERS[name](client, app_services, jwks)
    for intruder in ("mallory", "admin-user"):
        role = "admin" if intruder == "admin-user" else "user"
        response = await client.request(
            method, path, headers=bearer(jwks.token(intruder, role=role))
        )
        assert response.status == 404
        assert (await response.json())["statusCode"] == 404
        await unchanged()
    own = await client.request(method, path, headers=bearer(jwks.token()))
    assert own.status == 200
