"""Idempotency keys over HTTP: a replay is the same request, or a 409."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from mana_credits_core import TransactionType
from mana_credits_core.services import Services

from .conftest import Jwks, bearer, service

Client = TestClient[web.Request, web.Application]

BODY: dict[str, Any] = {
    "amount": 30,
    "appId": "chat",
    "description": "GPT answer",
    "idempotencyKey": "req-1",
    "metadata": {"model": "gpt", "usage": {"in": 12, "out": 40}},
}


async def post_raw(client: Client, path: str, text: str, headers: dict[str, str]) -> Any:
    response = await client.post(
        path, data=text, headers=headers | {"Content-Type": "application/json"}
    )
    return response.status, await response.json()


@pytest.mark.parametrize(
    ("path", "user"),
    [("/api/v1/credits/use", None), ("/api/v1/internal/credits/use", "alice")],
)
async def test_a_replay_with_other_text_is_409_and_the_same_json_replays(
    client: Client, jwks: Jwks, app_services: Services, path: str, user: str | None
) -> None:
    await app_services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
    headers = bearer(jwks.token()) if user is None else service()
    body = BODY if user is None else BODY | {"userId": user}
    status, first = await post_raw(client, path, json.dumps(body), headers)
    assert status == 200, first

    # The same request written otherwise: other key order, other whitespace.
    reordered = {key: body[key] for key in reversed(body)}
    reordered["metadata"] = {"usage": {"out": 40, "in": 12}, "model": "gpt"}
    status, again = await post_raw(client, path, json.dumps(reordered, indent=3), headers)
    assert status == 200
    assert again["message"] == "Transaction already processed"
    assert again["transaction"] == first["transaction"]

    changes: list[tuple[dict[str, Any], list[str]]] = [
        ({"description": "GPT answer (retry)"}, ["description"]),
        ({"metadata": {"model": "gpt", "usage": {"in": 12, "out": 41}}}, ["metadata"]),
        ({"metadata": None}, ["metadata"]),
    ]
    for change, differs in changes:
        status, conflict = await post_raw(client, path, json.dumps(body | change), headers)
        assert status == 409, conflict
        assert conflict["code"] == "idempotency_key_reused"
        assert conflict["details"] == {
            "originalAmount": 30,
            "originalAppId": "chat",
            "differs": differs,
        }
    assert (await app_services.credits.balance("alice")).balance == 70
    assert len(await app_services.credits.transactions("alice")) == 2


async def test_a_refund_key_replayed_with_another_description_is_409(
    client: Client, app_services: Services
) -> None:
    path = "/api/v1/internal/credits/refund"
    body = {"userId": "u1", "amount": 5, "description": "failed job", "idempotencyKey": "r1"}
    status, first = await post_raw(client, path, json.dumps(body), service())
    assert status == 200, first
    status, again = await post_raw(client, path, json.dumps(body), service())
    assert (status, again["transaction"]) == (200, first["transaction"])
    status, conflict = await post_raw(
        client, path, json.dumps(body | {"description": "other job"}), service()
    )
    assert (status, conflict["code"]) == (409, "idempotency_key_reused")
    assert (await app_services.credits.balance("u1")).balance == 5


@pytest.mark.parametrize("spelling", ["idempotencykey", "IdempotencyKey", "idempotency-key"])
@pytest.mark.parametrize(
    ("path", "user"),
    [("/api/v1/credits/use", None), ("/api/v1/internal/credits/use", "alice")],
)
async def test_a_misspelt_idempotency_key_is_400_not_a_debit_without_a_key(
    client: Client, jwks: Jwks, app_services: Services, path: str, user: str | None, spelling: str
) -> None:
    # Ignored like other unknown keys, the retry would be debited a second time.
    await app_services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
    headers = bearer(jwks.token()) if user is None else service()
    body = {k: v for k, v in BODY.items() if k != "idempotencyKey"} | {spelling: "req-9"}
    if user is not None:
        body["userId"] = user
    status, answer = await post_raw(client, path, json.dumps(body), headers)
    assert status == 400
    assert answer["details"]["field"] == "idempotencyKey"
    assert spelling in answer["message"]
    assert (await app_services.credits.balance("alice")).balance == 100
    # Keys the model does not know at all are still ignored, as the old service did.
    harmless = BODY | {"clientVersion": "4.2"} | ({"userId": user} if user else {})
    status, _ = await post_raw(client, path, json.dumps(harmless), headers)
    assert status == 200
