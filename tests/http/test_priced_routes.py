"""Debits, holds and commits by operation of the price list over HTTP, the public price
list with its ETag, and the accrued milli-credits in balance answers; on every store."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.settings import Settings
from mana_credits_core import TransactionType
from mana_credits_core.ports import Store
from mana_credits_core.services import Services

from .conftest import Jwks, bearer, service

Client = TestClient[web.Request, web.Application]
USE = "/api/v1/credits/use"
INTERNAL_USE = "/api/v1/internal/credits/use"
RESERVE = "/api/v1/internal/credits/reserve"
COMMIT = "/api/v1/internal/credits/commit"
PRICES = "/api/v1/credits/prices"
OLLAMA = "ai_chat_ollama"  # 0.1 credits a call, app chat


@pytest.fixture
def app_services(store: Store, http_settings: Settings) -> Services:
    """The conftest's client on every store (the price list is in each)."""
    return build_services(store, http_settings, clock=TickingClock())


async def fund(services: Services, user: str, amount: int) -> None:
    await services.credits.credit(user, amount, TransactionType.GRANT, "funds")


async def debit_as(
    client: Client, jwks: Jwks, route: str, user: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """POST a debit as `user` on the personal (JWT) or internal (service key) route."""
    if route == USE:
        response = await client.post(USE, json=body, headers=bearer(jwks.token(user)))
    else:
        response = await client.post(INTERNAL_USE, json={"userId": user, **body}, headers=service())
    return response.status, await response.json()


async def accrued(services: Services, user: str) -> tuple[int, int]:
    found = await services.credits.balance(user)
    return found.balance, found.accrued_milli


ROUTES = pytest.mark.parametrize("route", [USE, INTERNAL_USE], ids=["user", "internal"])


@ROUTES
async def test_ten_calls_at_a_tenth_of_a_credit_charge_exactly_one(
    client: Client, jwks: Jwks, app_services: Services, route: str
) -> None:
    await fund(app_services, "alice", 5)
    seen = []
    for _ in range(10):
        status, answer = await debit_as(client, jwks, route, "alice", {"operation": OLLAMA})
        assert status == 200, answer
        assert set(answer) == {"success", "transaction", "newBalance"}
        seen.append((answer["transaction"]["amount"], answer["newBalance"]["accruedMilliCredits"]))
        t = answer["transaction"]
        assert (t["type"], t["appId"], t["description"]) == ("usage", "chat", "Chat (local model)")
        assert t["metadata"]["pricing"]["operation"] == OLLAMA
    assert seen == [(0, 100 * n) for n in range(1, 10)] + [(-1, 0)]
    assert answer["newBalance"] == {"balance": 4, "totalSpent": 1, "accruedMilliCredits": 0}
    assert await accrued(app_services, "alice") == (4, 0)


@ROUTES
async def test_a_quantity_is_priced_per_unit_size_and_its_app_checked(
    client: Client, jwks: Jwks, app_services: Services, route: str
) -> None:
    await fund(app_services, "bob", 5)
    # bulk_import: 0.2 credits per 10 items, app notes. 15 items cost 0.3 credits.
    body = {"operation": "bulk_import", "quantity": 15, "appId": "notes", "description": "csv"}
    status, answer = await debit_as(client, jwks, route, "bob", body)
    assert status == 200, answer
    assert answer["newBalance"] == {"balance": 5, "totalSpent": 0, "accruedMilliCredits": 300}
    assert (answer["transaction"]["amount"], answer["transaction"]["description"]) == (0, "csv")
    assert answer["transaction"]["metadata"]["pricing"]["costMilli"] == 300
    wrong = {"operation": "bulk_import", "appId": "chat"}
    status, answer = await debit_as(client, jwks, route, "bob", wrong)
    assert (status, answer["details"]) == (400, {"field": "appId"})
    assert "bulk_import" in answer["message"]
    assert "notes" in answer["message"]
    assert await accrued(app_services, "bob") == (5, 300)


@ROUTES
async def test_a_replayed_operation_debit_accrues_nothing(
    client: Client, jwks: Jwks, app_services: Services, route: str
) -> None:
    await fund(app_services, "carl", 5)
    body = {"operation": OLLAMA, "idempotencyKey": "answer-1", "metadata": {"turn": 1}}
    status, first = await debit_as(client, jwks, route, "carl", body)
    assert status == 200
    assert first["newBalance"]["accruedMilliCredits"] == 100
    status, again = await debit_as(client, jwks, route, "carl", body)
    assert status == 200
    assert again == {
        "success": True,
        "transaction": first["transaction"],
        "message": "Transaction already processed",
    }
    assert await accrued(app_services, "carl") == (5, 100)
    # The same key for another quantity is another request.
    other = {**body, "quantity": 2}
    status, answer = await debit_as(client, jwks, route, "carl", other)
    assert status == 409, answer
    assert await accrued(app_services, "carl") == (5, 100)


@ROUTES
async def test_short_of_credits_asks_for_the_whole_credits_due(
    client: Client, jwks: Jwks, app_services: Services, route: str
) -> None:
    await app_services.credits.init_balance("dora")
    # 55 items cost 1.1 credits: 1 credit due now (0.1 carried), not the 2 it may take.
    body = {"operation": "bulk_import", "quantity": 55}
    status, answer = await debit_as(client, jwks, route, "dora", body)
    assert status == 402
    assert (answer["code"], answer["details"]) == (
        "insufficient_credits",
        {"required": 1, "available": 0},
    )
    assert await accrued(app_services, "dora") == (0, 0)  # refused: nothing accrued
    await fund(app_services, "dora", 1)
    status, answer = await debit_as(client, jwks, route, "dora", body)
    assert status == 200, answer
    assert answer["newBalance"] == {"balance": 0, "totalSpent": 1, "accruedMilliCredits": 100}


@ROUTES
async def test_a_debit_by_amount_is_what_it_always_was(
    client: Client, jwks: Jwks, app_services: Services, route: str
) -> None:
    await fund(app_services, "erin", 100)
    body = {"amount": 30, "appId": "chat", "description": "GPT answer", "metadata": {"m": 1}}
    status, answer = await debit_as(client, jwks, route, "erin", body)
    assert status == 200, answer
    assert answer["newBalance"] == {"balance": 70, "totalSpent": 30, "accruedMilliCredits": 0}
    t = answer["transaction"]
    assert (t["amount"], t["appId"], t["description"], t["metadata"]) == (
        -30,
        "chat",
        "GPT answer",
        {"m": 1},
    )


BAD_DEBITS = [
    ({"amount": 1, "operation": OLLAMA, "appId": "chat", "description": "x"}, "amount"),
    ({"appId": "chat", "description": "x"}, "amount"),
    ({}, "amount"),
    ({"amount": 1, "quantity": 2, "appId": "chat", "description": "x"}, "quantity"),
    ({"amount": 1, "description": "x"}, "appId"),
    ({"amount": 1, "appId": "chat"}, "description"),
    ({"operation": "no_such_operation"}, "operation"),
    ({"operation": "Chat GPT\n"}, "operation"),
    ({"operation": ""}, "operation"),
    ({"operation": 7}, "operation"),
    ({"operation": OLLAMA, "quantity": 0}, "quantity"),
    ({"operation": OLLAMA, "quantity": 1_000_001}, "quantity"),
    ({"operation": OLLAMA, "quantity": "3"}, "quantity"),
    ({"operation": OLLAMA, "quantity": 1.5}, "quantity"),
    ({"operation": OLLAMA, "quantity": True}, "quantity"),
    ({"operation": OLLAMA, "quantity": None}, "quantity"),  # null is no default
    ({"operation": OLLAMA, "appId": ""}, "appId"),
    ({"operation": OLLAMA, "metadata": {"pricing": {"costMilli": 0}}}, "metadata"),
    ({"Operation": OLLAMA}, "operation"),
    ({"operation": OLLAMA, "quantitY": 3}, "quantity"),
    ({"operation": OLLAMA, "Idempotency-Key": "k"}, "idempotencyKey"),
    # One field under both its names: one would be dropped without a word.
    ({"operation": OLLAMA, "idempotencyKey": "a", "idempotency_key": "b"}, "idempotencyKey"),
    ({"amount": 1, "appId": "chat", "app_id": "x", "description": "x"}, "appId"),
    # The service's own pricing record, faked on a debit by amount.
    ({"amount": 1, "appId": "chat", "description": "x", "metadata": {"pricing": {}}}, "metadata"),
]


@ROUTES
@pytest.mark.parametrize(("body", "field"), BAD_DEBITS, ids=[str(b) for b, _ in BAD_DEBITS])
async def test_a_bad_debit_is_refused_naming_the_field(
    client: Client,
    jwks: Jwks,
    app_services: Services,
    route: str,
    body: dict[str, Any],
    field: str,
) -> None:
    await fund(app_services, "fay", 10)
    status, answer = await debit_as(client, jwks, route, "fay", body)
    assert status == 400, answer
    assert (answer["statusCode"], answer["code"]) == (400, "invalid_input")
    assert answer["details"] == {"field": field}, answer
    assert await accrued(app_services, "fay") == (10, 0)
    assert len(await app_services.credits.transactions("fay")) == 1  # the funds only


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"amount": 1, "operation": OLLAMA}, ["amount", "operation"]),
        ({"operation": "no_such_operation"}, ["no_such_operation"]),
        ({"operation": "Chat GPT\n"}, ["'Chat GPT\\n'"]),
        ({"Operation": OLLAMA}, ["'Operation'", "'operation'"]),
    ],
)
async def test_the_message_names_what_is_wrong(
    client: Client, jwks: Jwks, body: dict[str, Any], words: list[str]
) -> None:
    status, answer = await debit_as(client, jwks, USE, "gus", body)
    assert status == 400
    for word in words:
        assert word in answer["message"], answer


async def test_a_null_says_to_leave_the_field_out(client: Client, jwks: Jwks) -> None:
    body = {"operation": OLLAMA, "quantity": None}
    status, answer = await debit_as(client, jwks, USE, "gus", body)
    assert (status, answer["message"]) == (
        400,
        "quantity: Input should be an integer; leave it out, not null",
    )


async def test_a_retired_operation_is_refused_by_name(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    await fund(app_services, "hal", 10)
    await app_services.prices.retire("pdf_export", operator="carol", reason="gone")
    status, answer = await debit_as(client, jwks, USE, "hal", {"operation": "pdf_export"})
    assert (status, answer["details"]) == (400, {"field": "operation"})
    assert "pdf_export" in answer["message"]
    held = await client.post(
        RESERVE, json={"userId": "hal", "operation": "pdf_export"}, headers=service()
    )
    assert held.status == 400
    assert "pdf_export" in (await held.json())["message"]
    assert await accrued(app_services, "hal") == (10, 0)


async def reserve(client: Client, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = await client.post(RESERVE, json=body, headers=service("research"))
    return response.status, await response.json()


async def commit(client: Client, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = await client.post(COMMIT, json=body, headers=service())
    return response.status, await response.json()


async def test_a_hold_by_operation_takes_what_it_may_cost(
    client: Client, app_services: Services
) -> None:
    await fund(app_services, "ida", 30)
    status, held = await reserve(client, {"userId": "ida", "operation": "ai_research_deep"})
    assert status == 200, held
    assert set(held) == {"reservationId", "balance"}
    assert held["balance"] == 5  # 25 credits held
    found = await app_services.reservations.get(held["reservationId"])
    assert (found.amount, found.reason, found.app_id) == (25, "Deep research", "research")
    status, done = await commit(client, {"reservationId": held["reservationId"]})
    assert status == 200, done
    assert (done["success"], done["charged"]) == (True, 25)
    assert set(done) == {"success", "transactionId", "charged"}
    assert await accrued(app_services, "ida") == (5, 0)


BAD_HOLDS = [
    ({"amount": 5, "operation": OLLAMA, "reason": "r"}, "amount"),
    ({"reason": "r"}, "amount"),
    ({"amount": 5, "quantity": 2, "reason": "r"}, "quantity"),
    ({"amount": 5}, "reason"),
    ({"operation": "no_such_operation"}, "operation"),
    ({"operation": OLLAMA, "quantity": 0}, "quantity"),
    ({"operation": OLLAMA, "quantity": None}, "quantity"),
    ({"operation": OLLAMA, "Quantity": 2}, "quantity"),
    ({"OPERATION": OLLAMA}, "operation"),
]


@pytest.mark.parametrize(("body", "field"), BAD_HOLDS, ids=[str(b) for b, _ in BAD_HOLDS])
async def test_a_bad_hold_is_refused_naming_the_field(
    client: Client, app_services: Services, body: dict[str, Any], field: str
) -> None:
    await fund(app_services, "jan", 10)
    status, answer = await reserve(client, {"userId": "jan", **body})
    assert (status, answer["details"]) == (400, {"field": field}), answer
    assert await accrued(app_services, "jan") == (10, 0)


async def test_a_hold_by_amount_is_what_it_always_was(
    client: Client, app_services: Services
) -> None:
    await fund(app_services, "kim", 10)
    status, held = await reserve(client, {"userId": "kim", "amount": 4, "reason": "render"})
    assert (status, held["balance"]) == (200, 6)
    found = await app_services.reservations.get(held["reservationId"])
    assert (found.reason, found.app_id) == ("render", "research")  # X-App-Id, as before


async def test_a_partial_commit_charges_part_and_releases_the_rest(
    client: Client, app_services: Services
) -> None:
    await fund(app_services, "lea", 20)
    _, held = await reserve(client, {"userId": "lea", "amount": 10, "reason": "render"})
    rid = held["reservationId"]
    bad: list[tuple[dict[str, Any], str]] = [
        ({"amount": 11}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": 4, "quantity": 1}, "amount"),
        ({"quantity": 1}, "quantity"),  # the hold was made by amount
        ({"amount": "4"}, "amount"),
        ({"Amount": 4}, "amount"),
        # A null by mistake must not commit the whole hold.
        ({"amount": None}, "amount"),
        ({"quantity": None}, "quantity"),
    ]
    for body, field in bad:
        status, answer = await commit(client, {"reservationId": rid, **body})
        assert (status, answer["details"]) == (400, {"field": field}), (body, answer)
    assert await accrued(app_services, "lea") == (10, 0)  # still held, nothing charged
    status, done = await commit(
        client, {"reservationId": rid, "amount": 4, "description": "3 of 5"}
    )
    assert (status, done["charged"]) == (200, 4), done
    assert await accrued(app_services, "lea") == (16, 0)
    entry = (await app_services.credits.transactions("lea", limit=1))[0]
    assert (entry.id, entry.amount, entry.description) == (done["transactionId"], -4, "3 of 5")
    status, again = await commit(client, {"reservationId": rid})
    assert (status, again["message"]) == (400, "Cannot commit reservation in status: committed")


async def test_a_hold_by_operation_commits_the_units_used(
    client: Client, app_services: Services
) -> None:
    await fund(app_services, "max", 10)
    # 100 items of bulk_import may cost 2 credits; 33 used cost 0.66: it accrues.
    _, held = await reserve(client, {"userId": "max", "operation": "bulk_import", "quantity": 100})
    assert held["balance"] == 8
    rid = held["reservationId"]
    status, answer = await commit(client, {"reservationId": rid, "quantity": 101})
    assert (status, answer["details"]) == (400, {"field": "quantity"}), answer
    status, done = await commit(client, {"reservationId": rid, "quantity": 33})
    assert (status, done["charged"]) == (200, 0), done
    assert await accrued(app_services, "max") == (10, 660)


def price_of(prices: list[dict[str, Any]], operation: str) -> dict[str, Any]:
    return next(p for p in prices if p["operation"] == operation)


async def test_the_price_list_is_public_by_app_then_operation(
    client: Client, app_services: Services
) -> None:
    response = await client.get(PRICES)
    assert response.status == 200
    assert response.headers["Cache-Control"] == "public, max-age=60"
    prices = await response.json()
    assert [(p["appId"], p["operation"]) for p in prices] == sorted(
        (p.app_id, p.operation) for p in await app_services.prices.list()
    )
    ollama = price_of(prices, OLLAMA)
    assert list(ollama) == [
        "operation",
        "appId",
        "name",
        "description",
        "credits",
        "priceMilliCredits",
        "unit",
        "unitSize",
        "updatedAt",
    ]
    assert (ollama["appId"], ollama["credits"], ollama["priceMilliCredits"]) == ("chat", "0.1", 100)
    assert (ollama["unit"], ollama["unitSize"]) == (None, 1)
    bulk = price_of(prices, "bulk_import")
    assert (bulk["credits"], bulk["priceMilliCredits"], bulk["unit"], bulk["unitSize"]) == (
        "0.2",
        200,
        "item",
        10,
    )
    await app_services.prices.retire("pdf_export", operator="carol")
    listed = await (await client.get(PRICES)).json()
    assert "pdf_export" not in {p["operation"] for p in listed}


async def test_the_price_list_answers_304_to_a_matching_if_none_match(client: Client) -> None:
    first = await client.get(PRICES)
    etag = first.headers["ETag"]
    assert etag.startswith('"')  # strong: no W/
    assert etag.endswith('"')
    tag = etag.strip('"')
    for header in [etag, f"W/{etag}", f'"other", {etag}', f'W/"other",W/{etag}', "*"]:
        response = await client.get(PRICES, headers={"If-None-Match": header})
        assert response.status == 304, header
        assert await response.read() == b""
        assert "Content-Type" not in response.headers
        assert response.headers["ETag"] == etag
        assert response.headers["Cache-Control"] == "public, max-age=60"
    for header in ['"other"', f'"{tag}x"', tag, "W/other"]:
        response = await client.get(PRICES, headers={"If-None-Match": header})
        assert response.status == 200, header
        assert await response.read() == await first.read()


async def test_a_price_change_changes_the_etag(client: Client, app_services: Services) -> None:
    before = await client.get(PRICES)
    etag = before.headers["ETag"]
    await app_services.prices.set(OLLAMA, "0.2", operator="carol", reason="dearer")
    after = await client.get(PRICES, headers={"If-None-Match": etag})
    assert after.status == 200
    assert after.headers["ETag"] != etag
    assert price_of(await after.json(), OLLAMA)["credits"] == "0.2"
    same = await client.get(PRICES, headers={"If-None-Match": after.headers["ETag"]})
    assert same.status == 304


async def test_balances_carry_the_accrued_milli_credits(
    client: Client, jwks: Jwks, app_services: Services
) -> None:
    await fund(app_services, "ned", 3)
    for _ in range(3):
        status, _ = await debit_as(client, jwks, USE, "ned", {"operation": OLLAMA})
        assert status == 200
    mine = await client.get("/api/v1/credits/balance", headers=bearer(jwks.token("ned")))
    assert await mine.json() == {
        "balance": 3,
        "totalEarned": 3,
        "totalSpent": 0,
        "accruedMilliCredits": 300,
    }
    theirs = await client.get("/api/v1/internal/credits/balance/ned", headers=service())
    assert await theirs.json() == {
        "balance": 3,
        "totalEarned": 3,
        "totalSpent": 0,
        "accruedMilliCredits": 300,
        "transactionsCount": 4,
    }
    # A debit by amount charges what it says and leaves the accrual as it is.
    body = {"amount": 1, "appId": "chat", "description": "flat"}
    status, answer = await debit_as(client, jwks, USE, "ned", body)
    assert status == 200, answer
    assert answer["newBalance"] == {"balance": 2, "totalSpent": 1, "accruedMilliCredits": 300}


async def test_openapi_gives_optional_counts_as_bounded_integers_without_a_null_default(
    client: Client,
) -> None:
    """Null is refused for these fields: the document must not offer it as their default."""
    document: dict[str, Any] = await (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]

    def body_of(path: str) -> dict[str, Any]:
        content = document["paths"][path]["post"]["requestBody"]["content"]
        ref: str = content["application/json"]["schema"]["$ref"]
        properties: dict[str, Any] = schemas[ref.rsplit("/", 1)[-1]]["properties"]
        return properties

    bounded = [
        (body_of(USE)["quantity"], 1, 1_000_000),
        (body_of(INTERNAL_USE)["quantity"], 1, 1_000_000),
        (body_of(RESERVE)["quantity"], 1, 1_000_000),
        (body_of(COMMIT)["quantity"], 1, 1_000_000),
        (body_of(COMMIT)["amount"], 1, 100_000_000),
    ]
    for field, least, most in bounded:
        assert "default" not in field, field
        assert (field["type"], field["minimum"], field["maximum"]) == ("integer", least, most)
    assert "default 1" in body_of(USE)["quantity"]["description"]
    assert "default: all held" in body_of(COMMIT)["amount"]["description"]
