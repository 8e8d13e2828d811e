"""The analytics service's rewards (`POST /internal/credits/grant`), the auth service's
data summary (`transactionsCount` of the internal balance) and the web app's interval
change, sent and read exactly as those clients do (the contract's rows)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mana_credits_core import TransactionType
from mana_credits_core.services import Services

from .conftest import Jwks, bearer, service
from .metrics_reading import Client, moved, scrape

GRANT = "/api/v1/internal/credits/grant"
ANSWER_KEYS = {"ok", "alreadyGranted", "newBalance", "transactionId"}
BALANCE_KEYS = {
    "balance",
    "totalEarned",
    "totalSpent",
    "accruedMilliCredits",
    "transactionsCount",
}
RACERS = 20


def reward(user: str = "alice", amount: int = 25, ref: str = "feedback-4711") -> dict[str, Any]:
    """The body the analytics service sends."""
    return {
        "userId": user,
        "amount": amount,
        "reason": "feedback",
        "referenceId": ref,
        "description": "Thanks for your feedback",
    }


async def balance_of(client: Client, user: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/internal/credits/balance/{user}", headers=service())
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def test_a_reward_is_granted_once_and_repeats_answer_the_original(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    before = await scrape(client)
    first = await client.post(GRANT, json=reward(), headers=service("analytics"))
    assert first.status == 200
    granted = await first.json()
    assert set(granted) == ANSWER_KEYS
    assert (granted["ok"], granted["alreadyGranted"], granted["newBalance"]) == (True, False, 25)
    # The ledger entry as the web app's history shows it.
    history = await client.get("/api/v1/credits/transactions", headers=bearer(jwks.token("alice")))
    [entry] = await history.json()
    assert entry["id"] == granted["transactionId"]
    assert (entry["type"], entry["appId"], entry["amount"]) == ("grant", "community", 25)
    assert entry["metadata"] == {"reason": "feedback", "referenceId": "feedback-4711"}
    assert entry["description"] == "Thanks for your feedback"
    assert (entry["status"], entry["balanceBefore"], entry["balanceAfter"]) == ("completed", 0, 25)

    await app_services.credits.use("alice", 5, "chat", "spend")  # 20 left
    again = await client.post(GRANT, json=reward(amount=99), headers=service("analytics"))
    assert again.status == 200
    assert await again.json() == {
        "ok": True,
        "alreadyGranted": True,
        "newBalance": 25,  # the balance right after the original grant
        "transactionId": granted["transactionId"],
    }
    summary = await balance_of(client, "alice")
    assert summary == {
        "balance": 20,
        "totalEarned": 25,
        "totalSpent": 5,
        "accruedMilliCredits": 0,
        "transactionsCount": 2,
    }
    after = await scrape(client)
    assert moved(before, after, "mana_credits_grant") == {
        "mana_credits_grants_total": 1,
        "mana_credits_granted_credits_total": 25,
    }


async def test_description_is_optional_and_references_are_per_user(client: Client) -> None:
    bare = {"userId": "bob", "amount": 3, "reason": "bug_report", "referenceId": "r-1"}
    answer = await client.post(GRANT, json=bare, headers=service())
    assert (answer.status, (await answer.json())["newBalance"]) == (200, 3)
    for user in ("carol", "dave"):
        other = await client.post(GRANT, json=bare | {"userId": user}, headers=service())
        assert (await other.json())["alreadyGranted"] is False
    assert (await balance_of(client, "carol"))["totalEarned"] == 3


async def test_twenty_simultaneous_calls_grant_once(client: Client, app_services: Services) -> None:
    answers = await asyncio.gather(
        *(client.post(GRANT, json=reward(ref="race"), headers=service()) for _ in range(RACERS))
    )
    assert [a.status for a in answers] == [200] * RACERS
    bodies = [await a.json() for a in answers]
    assert sum(b["alreadyGranted"] is False for b in bodies) == 1
    assert len({b["transactionId"] for b in bodies}) == 1
    assert {b["newBalance"] for b in bodies} == {25}
    entries = await app_services.credits.transactions("alice")
    assert [e.type for e in entries] == [TransactionType.GRANT]
    assert (await balance_of(client, "alice"))["balance"] == 25
    assert (await app_services.reconcile.run()).ok


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("amount", {"amount": 0}),
        ("amount", {"amount": -5}),
        ("amount", {"amount": 1.5}),
        ("amount", {"amount": "10"}),
        ("amount", {"amount": True}),
        ("amount", {"amount": None}),
        ("userId", {"userId": ""}),
        ("userId", {"userId": 7}),
        ("reason", {"reason": ""}),
        ("reason", {"reason": "   "}),
        ("reason", {"reason": "r" * 65}),
        ("reason", {"reason": "bell\x07"}),
        ("referenceId", {"referenceId": ""}),
        ("referenceId", {"referenceId": "x" * 129}),
        ("referenceId", {"referenceId": ["x"]}),
        ("description", {"description": ""}),
        ("description", {"description": "d" * 257}),
        ("description", {"description": "nul\x00"}),
    ],
)
async def test_bad_bodies_are_400_naming_the_field_and_change_nothing(
    client: Client, field: str, change: dict[str, Any]
) -> None:
    response = await client.post(GRANT, json=reward() | change, headers=service())
    assert response.status == 400
    body = await response.json()
    assert (body["statusCode"], body["code"]) == (400, "invalid_input")
    assert body["details"]["field"] == field
    assert (await balance_of(client, "alice"))["transactionsCount"] == 0


@pytest.mark.parametrize("missing", ["userId", "amount", "reason", "referenceId"])
async def test_missing_fields_are_400(client: Client, missing: str) -> None:
    body = reward()
    del body[missing]
    response = await client.post(GRANT, json=body, headers=service())
    assert (response.status, (await response.json())["details"]["field"]) == (400, missing)


async def test_the_largest_values_the_contract_allows_are_accepted(client: Client) -> None:
    body = reward() | {"reason": "r" * 64, "referenceId": "x" * 128, "description": "d" * 256}
    response = await client.post(GRANT, json=body, headers=service())
    assert (response.status, (await response.json())["alreadyGranted"]) == (200, False)


async def test_only_services_may_grant(client: Client, jwks: Jwks) -> None:
    for headers in ({}, {"X-Service-Key": "wrong"}, bearer(jwks.token("alice", role="admin"))):
        response = await client.post(GRANT, json=reward(), headers=headers)
        assert response.status == 401
        assert (await response.json())["message"] == "Invalid or missing service key"
    assert (await balance_of(client, "alice"))["balance"] == 0


async def test_transactions_count_is_every_ledger_entry_of_the_user(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    fresh = await balance_of(client, "newcomer")
    assert fresh == dict.fromkeys(BALANCE_KEYS, 0)
    await app_services.credits.refund("erin", 100, "funds")
    use = {"userId": "erin", "amount": 10, "appId": "chat", "description": "answer"}
    assert (await client.post("/api/v1/internal/credits/use", json=use, headers=service())).ok
    assert (await client.post(GRANT, json=reward("erin"), headers=service())).ok
    gift = await client.post(
        "/api/v1/gifts", json={"totalCredits": 5}, headers=bearer(jwks.token("erin"))
    )
    assert gift.status == 201
    await app_services.credits.refund("frank", 1, "someone else's")
    summary = await balance_of(client, "erin")
    assert set(summary) == BALANCE_KEYS
    assert summary["transactionsCount"] == 4  # refund, debit, reward, gift hold
    assert summary["balance"] == 100 - 10 + 25 - 5
    # The personal balance keeps the old shape (and the accrual), without the count.
    personal = await client.get("/api/v1/credits/balance", headers=bearer(jwks.token("erin")))
    assert set(await personal.json()) == BALANCE_KEYS - {"transactionsCount"}


@pytest.mark.parametrize(
    ("start", "to", "price"),
    [("monthly", "yearly", 360), ("monthly", "quarterly", 90), ("yearly", "monthly", 30)],
)
async def test_change_interval_answers_the_next_charge_and_charges_nothing(
    client: Client, jwks: Jwks, app_services: Services, start: str, to: str, price: int
) -> None:
    await app_services.credits.refund("gus", 1000, "funds")
    gus = bearer(jwks.token("gus"))
    active = await client.post("/api/v1/sync/activate", json={"interval": start}, headers=gus)
    activated = await active.json()
    before = await balance_of(client, "gus")
    changed = await client.post("/api/v1/sync/change-interval", json={"interval": to}, headers=gus)
    assert changed.status == 200
    assert await changed.json() == {
        "success": True,
        "interval": to,
        "amountCharged": price,
        "effectiveAt": activated["nextChargeAt"],
    }
    assert await balance_of(client, "gus") == before  # nothing charged, no entry


async def test_openapi_documents_the_grant_and_the_entry_count(client: Client) -> None:
    document: dict[str, Any] = await (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]

    def schema_of(content: dict[str, Any]) -> dict[str, Any]:
        ref: str = content["application/json"]["schema"]["$ref"]
        found: dict[str, Any] = schemas[ref.rsplit("/", 1)[-1]]
        return found

    grant = document["paths"][GRANT]["post"]
    assert grant["security"] == [{"serviceKey": []}]
    body = schema_of(grant["requestBody"]["content"])
    assert set(body["required"]) == {"userId", "amount", "reason", "referenceId"}
    assert body["properties"]["reason"]["maxLength"] == 64
    assert body["properties"]["referenceId"]["maxLength"] == 128
    assert body["properties"]["amount"]["minimum"] == 1
    answer = schema_of(grant["responses"]["200"]["content"])
    assert set(answer["properties"]) == ANSWER_KEYS
    balance = document["paths"]["/api/v1/internal/credits/balance/{user_id}"]["get"]
    assert set(schema_of(balance["responses"]["200"]["content"])["properties"]) == BALANCE_KEYS


async def test_the_data_summary_is_a_read_that_stores_nothing(
    client: Client, app_services: Services
) -> None:
    # A user never seen: zero, and still no balance afterwards (a debit finds none).
    assert await balance_of(client, "nobody") == dict.fromkeys(BALANCE_KEYS, 0)
    use = {"userId": "nobody", "amount": 1, "appId": "chat", "description": "d"}
    debit = await client.post("/api/v1/internal/credits/use", json=use, headers=service())
    assert (debit.status, (await debit.json())["message"]) == (404, "User balance not found")
    # A deleted user: the summary the auth service shows afterwards brings nothing back.
    await app_services.credits.refund("carol", 10, "funds")
    deleted = await client.delete("/api/v1/internal/credits/balance/carol", headers=service())
    assert (await deleted.json())["deletedCount"] > 0
    assert await balance_of(client, "carol") == dict.fromkeys(BALANCE_KEYS, 0)
    again = await client.delete("/api/v1/internal/credits/balance/carol", headers=service())
    assert (await again.json())["deletedCount"] == 0
    kept = {b.user_id for b in await app_services.credits.top_balances(10)}
    assert len(kept) == 1  # the pseudonymous balance kept for the accounts
    assert not kept & {"carol", "nobody"}
