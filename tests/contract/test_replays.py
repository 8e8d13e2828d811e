"""A replayed idempotency key answers the original only for the very same request.

Any difference (operation, amount, app, description, metadata as a JSON value) is
`IdempotencyKeyReused` and changes nothing; on PostgreSQL these run through group
commit, the default debit path there.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mana_credits_core import IdempotencyKeyReused, TransactionType
from mana_credits_core.services import LedgerResult, Services

ORIGINAL: dict[str, Any] = {
    "amount": 10,
    "app_id": "chat",
    "description": "GPT answer",
    "metadata": {"model": "gpt", "tokens": [1, 2], "cached": False},
}


@pytest.fixture
async def funded(services: Services) -> Services:
    await services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
    return services


async def use(services: Services, **changes: Any) -> LedgerResult:
    request = ORIGINAL | changes
    return await services.credits.use(
        "alice",
        request["amount"],
        request["app_id"],
        request["description"],
        idempotency_key="k",
        metadata=request["metadata"],
    )


@pytest.mark.parametrize(
    ("changes", "differs"),
    [
        ({"description": "GPT answer, again"}, ["description"]),
        ({"metadata": {"model": "claude", "tokens": [1, 2], "cached": False}}, ["metadata"]),
        ({"metadata": {"model": "gpt", "tokens": [2, 1], "cached": False}}, ["metadata"]),
        ({"metadata": {"model": "gpt", "tokens": [1, 2], "cached": 0}}, ["metadata"]),
        ({"metadata": {"model": "gpt", "tokens": [1, 2]}}, ["metadata"]),
        ({"metadata": None}, ["metadata"]),
        ({"amount": 11}, ["amount"]),
        ({"app_id": "images", "description": "x"}, ["appId", "description"]),
    ],
)
async def test_a_key_replayed_with_any_other_field_is_refused(
    funded: Services, changes: dict[str, Any], differs: list[str]
) -> None:
    first = await use(funded)
    with pytest.raises(IdempotencyKeyReused) as refused:
        await use(funded, **changes)
    assert refused.value.details == {
        "original_amount": 10,
        "original_app_id": "chat",
        "differs": differs,
    }
    assert (await funded.credits.balance("alice")).balance == 90
    assert [e.id for e in await funded.credits.transactions("alice", limit=1)] == [first.entry.id]
    again = await use(funded)  # the original request still replays
    assert (again.replayed, again.entry) == (True, first.entry)


@pytest.mark.parametrize(
    "metadata",
    [
        {"cached": False, "tokens": [1, 2], "model": "gpt"},  # key order
        {"model": "gpt", "tokens": [1.0, 2], "cached": False},  # one JSON number
    ],
)
async def test_the_same_metadata_as_a_json_value_replays(
    funded: Services, metadata: dict[str, Any]
) -> None:
    first = await use(funded)
    again = await use(funded, metadata=metadata)
    assert (again.replayed, again.entry) == (True, first.entry)
    assert (await funded.credits.balance("alice")).balance == 90


@pytest.mark.parametrize(("first", "then"), [(None, {}), ({}, None), (None, None)])
async def test_absent_null_and_empty_metadata_are_the_same_request(
    funded: Services, first: dict[str, Any] | None, then: dict[str, Any] | None
) -> None:
    original = await use(funded, metadata=first)
    again = await use(funded, metadata=then)
    assert (again.replayed, again.entry.id) == (True, original.entry.id)
    assert (await funded.credits.balance("alice")).balance == 90


async def test_a_refund_key_replayed_with_another_description_is_refused(
    funded: Services,
) -> None:
    first = await funded.credits.refund("alice", 5, "failed job", idempotency_key="r")
    with pytest.raises(IdempotencyKeyReused) as refused:
        await funded.credits.refund("alice", 5, "another failed job", idempotency_key="r")
    assert refused.value.details["differs"] == ["description"]
    with pytest.raises(IdempotencyKeyReused):
        await funded.credits.refund(
            "alice", 5, "failed job", idempotency_key="r", metadata={"job": "j-2"}
        )
    again = await funded.credits.refund("alice", 5, "failed job", idempotency_key="r")
    assert (again.replayed, again.entry) == (True, first.entry)
    assert (await funded.credits.balance("alice")).balance == 105


async def test_an_operator_grant_key_replayed_for_another_reason_is_refused(
    funded: Services,
) -> None:
    await funded.credits.grant("alice", 50, "goodwill", "ops-ann", idempotency_key="g")
    with pytest.raises(IdempotencyKeyReused) as refused:
        await funded.credits.grant("alice", 50, "outage", "ops-ann", idempotency_key="g")
    assert refused.value.details["differs"] == ["description", "metadata"]
    again = await funded.credits.grant("alice", 50, "goodwill", "ops-ann", idempotency_key="g")
    assert again.replayed
    assert (await funded.credits.balance("alice")).balance == 150


async def test_concurrent_replays_with_one_different_description(funded: Services) -> None:
    results = await asyncio.gather(
        *(use(funded) for _ in range(10)),
        use(funded, description="something else"),
        *(use(funded) for _ in range(10)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, IdempotencyKeyReused)]
    applied = [r for r in results if isinstance(r, LedgerResult)]
    assert len(refused) + len(applied) == len(results)
    assert len({r.entry.id for r in applied}) == 1
    # The different request either came first (and is the original: all others are
    # refused) or later (and is the one refused).
    assert len(refused) == (1 if applied[0].entry.description == "GPT answer" else 20)
    assert (await funded.credits.balance("alice")).balance == 90
    assert (await funded.reconcile.run()).ok
