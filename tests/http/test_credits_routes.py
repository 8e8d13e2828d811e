"""Personal and internal credits routes: shapes key by key, errors, replays."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from mana_credits_core import TransactionType
from mana_credits_core.services import Services

from .conftest import Jwks, bearer, service

Client = TestClient[web.Request, web.Application]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TRANSACTION_KEYS = {
    "id",
    "userId",
    "type",
    "status",
    "amount",
    "balanceBefore",
    "balanceAfter",
    "appId",
    "description",
    "metadata",
    "idempotencyKey",
    "createdAt",
    "completedAt",
}


async def fund(services: Services, user: str, amount: int) -> None:
    await services.credits.credit(user, amount, TransactionType.GRANT, "funds")


def check_transaction(t: dict[str, Any]) -> None:
    assert set(t) == TRANSACTION_KEYS
    assert ISO.match(t["createdAt"])
    assert t["completedAt"] is None or ISO.match(t["completedAt"])
    assert isinstance(t["amount"], int)


async def test_balance_of_a_new_user_is_zero(client: Client, jwks: Jwks) -> None:
    response = await client.get("/api/v1/credits/balance", headers=bearer(jwks.token("new")))
    assert response.status == 200
    assert await response.json() == {
        "balance": 0,
        "totalEarned": 0,
        "totalSpent": 0,
        "accruedMilliCredits": 0,
    }


async def test_use_answers_the_contract_shape(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    await fund(app_services, "alice", 100)
    body = {
        "amount": 30,
        "appId": "chat",
        "description": "GPT answer",
        "idempotencyKey": "req-1",
        "metadata": {"model": "gpt"},
    }
    response = await client.post("/api/v1/credits/use", json=body, headers=bearer(jwks.token()))
    assert response.status == 200
    answer = await response.json()
    assert set(answer) == {"success", "transaction", "newBalance"}
    assert answer["success"] is True
    assert answer["newBalance"] == {"balance": 70, "totalSpent": 30, "accruedMilliCredits": 0}
    t = answer["transaction"]
    check_transaction(t)
    assert (t["userId"], t["type"], t["status"], t["amount"]) == (
        "alice",
        "usage",
        "completed",
        -30,
    )
    assert (t["balanceBefore"], t["balanceAfter"], t["appId"]) == (100, 70, "chat")
    assert (t["idempotencyKey"], t["metadata"]) == ("req-1", {"model": "gpt"})

    replay = await client.post("/api/v1/credits/use", json=body, headers=bearer(jwks.token()))
    assert replay.status == 200
    again = await replay.json()
    assert again == {
        "success": True,
        "transaction": t,
        "message": "Transaction already processed",
    }

    reused = await client.post(
        "/api/v1/credits/use", json=body | {"amount": 31}, headers=bearer(jwks.token())
    )
    assert reused.status == 409
    conflict = await reused.json()
    assert conflict["code"] == "idempotency_key_reused"
    # camelCase like every other key of the API, never the core's argument names
    assert conflict["details"] == {
        "originalAmount": 30,
        "originalAppId": "chat",
        "differs": ["amount"],
    }


async def test_insufficient_credits_is_402_with_details(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    await fund(app_services, "alice", 5)
    response = await client.post(
        "/api/v1/credits/use",
        json={"amount": 6, "appId": "chat", "description": "x"},
        headers=bearer(jwks.token()),
    )
    assert response.status == 402
    assert await response.json() == {
        "statusCode": 402,
        "message": "Insufficient credits",
        "code": "insufficient_credits",
        "details": {"required": 6, "available": 5},
    }


async def test_use_without_a_balance_row_is_404(client: Client, jwks: Jwks) -> None:
    response = await client.post(
        "/api/v1/credits/use",
        json={"amount": 1, "appId": "chat", "description": "x"},
        headers=bearer(jwks.token("stranger")),
    )
    assert response.status == 404
    assert (await response.json())["message"] == "User balance not found"


async def test_transactions_newest_first_with_paging(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    await fund(app_services, "alice", 500)
    for i in range(105):
        await app_services.credits.use("alice", 1, "chat", f"use {i}")
    headers = bearer(jwks.token())
    response = await client.get("/api/v1/credits/transactions?limit=2&offset=1", headers=headers)
    assert response.status == 200
    page = await response.json()
    assert [t["description"] for t in page] == ["use 103", "use 102"]
    for t in page:
        check_transaction(t)
    capped = await client.get("/api/v1/credits/transactions?limit=1000000", headers=headers)
    assert len(await capped.json()) == 100
    default = await client.get("/api/v1/credits/transactions", headers=headers)
    assert len(await default.json()) == 50
    for query in ("offset=-1", "limit=abc", "limit=0", "offset=1.5"):
        bad = await client.get(f"/api/v1/credits/transactions?{query}", headers=headers)
        assert bad.status == 400, query
        assert (await bad.json())["code"] == "invalid_input"


async def test_other_users_see_only_their_own_ledger(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    await fund(app_services, "alice", 10)
    response = await client.get("/api/v1/credits/transactions", headers=bearer(jwks.token("bob")))
    assert await response.json() == []


async def test_internal_routes_answer_the_contract_shapes(
    client: Client, app_services: Services
) -> None:
    init = await client.post(
        "/api/v1/internal/credits/init", json={"userId": "u1"}, headers=service()
    )
    assert (init.status, await init.json()) == (
        200,
        {"balance": 0, "totalEarned": 0, "totalSpent": 0, "accruedMilliCredits": 0},
    )

    refund = await client.post(
        "/api/v1/internal/credits/refund",
        json={"userId": "u1", "amount": 50, "description": "welcome", "idempotencyKey": "w"},
        headers=service(),
    )
    body = await refund.json()
    assert set(body) == {"success", "transaction", "newBalance"}
    assert body["newBalance"] == {"balance": 50}
    check_transaction(body["transaction"])
    assert (body["transaction"]["type"], body["transaction"]["appId"]) == ("refund", "system")
    replay = await client.post(
        "/api/v1/internal/credits/refund",
        json={"userId": "u1", "amount": 50, "description": "welcome", "idempotencyKey": "w"},
        headers=service(),
    )
    replayed = await replay.json()
    assert replayed["transaction"] == body["transaction"]
    assert replayed["newBalance"] == {"balance": 50}

    use = await client.post(
        "/api/v1/internal/credits/use",
        json={"userId": "u1", "amount": 20, "appId": "images", "description": "img"},
        headers=service("images"),
    )
    used = await use.json()
    assert used["newBalance"] == {"balance": 30, "totalSpent": 20, "accruedMilliCredits": 0}

    balance = await client.get("/api/v1/internal/credits/balance/u1", headers=service())
    assert await balance.json() == {
        "balance": 30,
        "totalEarned": 50,
        "totalSpent": 20,
        "accruedMilliCredits": 0,
        "transactionsCount": 2,  # the refund (once) and the debit
    }

    reserve = await client.post(
        "/api/v1/internal/credits/reserve",
        json={"userId": "u1", "amount": 10, "reason": "research"},
        headers=service("research-app"),
    )
    held = await reserve.json()
    assert set(held) == {"reservationId", "balance"}
    assert held["balance"] == 20
    commit = await client.post(
        "/api/v1/internal/credits/commit",
        json={"reservationId": held["reservationId"], "description": "done"},
        headers=service(),
    )
    committed = await commit.json()
    assert set(committed) == {"success", "transactionId", "charged"}
    assert committed["charged"] == 10
    entry = await app_services.credits.transactions("u1", limit=1)
    assert (entry[0].id, entry[0].app_id) == (committed["transactionId"], "research-app")

    again = await client.post(
        "/api/v1/internal/credits/commit",
        json={"reservationId": held["reservationId"]},
        headers=service(),
    )
    assert again.status == 400
    assert (await again.json())["message"] == "Cannot commit reservation in status: committed"

    second = await client.post(
        "/api/v1/internal/credits/reserve",
        json={"userId": "u1", "amount": 5, "reason": "r"},
        headers=service(),
    )
    rid = (await second.json())["reservationId"]
    released = await client.post(
        "/api/v1/internal/credits/refund-reservation",
        json={"reservationId": rid},
        headers=service(),
    )
    assert await released.json() == {"success": True, "balance": 20}
    twice = await client.post(
        "/api/v1/internal/credits/refund-reservation",
        json={"reservationId": rid},
        headers=service(),
    )
    assert twice.status == 400
    assert (await twice.json())["message"] == "Cannot refund reservation in status: refunded"
    unknown = await client.post(
        "/api/v1/internal/credits/commit", json={"reservationId": "nope"}, headers=service()
    )
    assert unknown.status == 404
    too_much = await client.post(
        "/api/v1/internal/credits/reserve",
        json={"userId": "u1", "amount": 21, "reason": "r"},
        headers=service(),
    )
    assert too_much.status == 402
    assert (await app_services.reconcile.run()).ok


async def test_concurrent_http_debits_never_overdraw(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    await fund(app_services, "hot", 100)
    token = jwks.token("hot")

    async def one(i: int) -> int:
        response = await client.post(
            "/api/v1/credits/use",
            json={"amount": 10, "appId": "chat", "description": f"r{i}"},
            headers=bearer(token),
        )
        await response.read()
        return response.status

    statuses = await asyncio.gather(*(one(i) for i in range(50)))
    assert (statuses.count(200), statuses.count(402)) == (10, 40)
    assert (await app_services.credits.balance("hot")).balance == 0
    assert (await app_services.reconcile.run()).ok


async def test_concurrent_http_replays_make_one_entry(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    await fund(app_services, "alice", 100)
    token = jwks.token()
    body = {"amount": 10, "appId": "chat", "description": "x", "idempotencyKey": "same"}

    async def one() -> dict[str, Any]:
        response = await client.post("/api/v1/credits/use", json=body, headers=bearer(token))
        assert response.status == 200
        answer: dict[str, Any] = await response.json()
        return answer

    answers = await asyncio.gather(*(one() for _ in range(20)))
    assert len({a["transaction"]["id"] for a in answers}) == 1
    assert (await app_services.credits.balance("alice")).balance == 90
