"""Bodies nested deeper than the parser takes: a 400 in the usual shape on every route
that reads a JSON body, never a 500; bodies within the limit are served."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.settings import Settings
from mana_credits_core import TransactionType
from mana_credits_core.services import Services
from mana_credits_http import create_app
from mana_credits_http.app import ROUTES
from mana_credits_http.body import MAX_DEPTH

from .conftest import Jwks, bearer, service, settings_like
from .deep_json import DEEP, deep_arrays, deep_objects

Client = TestClient[web.Request, web.Application]
TOO_DEEP = {
    "statusCode": 400,
    "message": f"The JSON body is nested deeper than {MAX_DEPTH} levels",
    "code": "invalid_input",
    "details": {"field": "body"},
}
# Every route that reads a JSON body, whatever its family (user, admin, internal).
BODY_ROUTES = [route for route in ROUTES if route.body is not None]


@pytest.fixture
async def roomy_client(app_services: Services, http_settings: Settings) -> AsyncIterator[Client]:
    """The app with the default body limit (64 KB), so deep bodies reach the parser."""
    app = create_app(settings_like(http_settings), services=app_services)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


def credential(auth: str, jwks: Jwks) -> dict[str, str]:
    if auth == "service":
        return service("app")
    return bearer(jwks.token(role="admin" if auth == "admin" else "user"))


def path_of(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", template)


def body_with(data: str) -> bytes:
    """A debit of 1 credit from alice (user or internal route) whose metadata holds
    `data`: the depth is the only fault it can have."""
    fields = '"amount": 1, "appId": "a", "description": "d", "userId": "alice"'
    return ("{" + fields + ', "metadata": {"m": ' + data + "}}").encode()


@pytest.mark.parametrize("shape", sorted(DEEP))
async def test_every_body_route_answers_400_to_a_body_too_deep_to_parse(
    roomy_client: Client, jwks: Jwks, app_services: Services, shape: str
) -> None:
    assert len(BODY_ROUTES) >= 10  # user, gift, sync and internal routes
    for body in (DEEP[shape].encode(), body_with(DEEP[shape])):
        for route in BODY_ROUTES:
            headers = credential(route.auth, jwks) | {"Content-Type": "application/json"}
            response = await roomy_client.request(
                route.method, path_of(route.path), data=body, headers=headers
            )
            where = f"{route.method} {route.path}"
            assert response.status == 400, where
            assert await response.json() == TOO_DEEP, where
    assert await app_services.credits.transactions("alice") == []


@pytest.mark.parametrize(
    "data",
    [deep_arrays(MAX_DEPTH - 2), deep_objects(MAX_DEPTH - 2)],
    ids=["arrays", "objects"],
)
async def test_a_body_at_the_depth_limit_is_served(
    roomy_client: Client, jwks: Jwks, app_services: Services, data: str
) -> None:
    # body, metadata, then MAX_DEPTH - 2 levels: exactly MAX_DEPTH.
    await app_services.credits.credit("alice", 10, TransactionType.GRANT, "funds")
    for route, headers in [
        ("/api/v1/credits/use", bearer(jwks.token())),
        ("/api/v1/internal/credits/use", service("app")),
    ]:
        response = await roomy_client.post(
            route, data=body_with(data), headers=headers | {"Content-Type": "application/json"}
        )
        assert response.status == 200, await response.text()
    assert (await app_services.credits.balance("alice")).balance == 8


@pytest.mark.parametrize(
    "data", [deep_arrays(MAX_DEPTH - 1), deep_objects(MAX_DEPTH - 1)], ids=["arrays", "objects"]
)
async def test_one_level_more_is_a_400_that_changes_nothing(
    roomy_client: Client, jwks: Jwks, app_services: Services, data: str
) -> None:
    await app_services.credits.credit("alice", 10, TransactionType.GRANT, "funds")
    response = await roomy_client.post(
        "/api/v1/credits/use",
        data=body_with(data),
        headers=bearer(jwks.token()) | {"Content-Type": "application/json"},
    )
    assert (response.status, await response.json()) == (400, TOO_DEEP)
    assert (await app_services.credits.balance("alice")).balance == 10
