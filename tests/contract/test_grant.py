"""Rewards (`CreditsService.reward`) on every store: a grant once per user and reference,
decided by the ledger's unique key, also when twenty callers race; and the entry count
the internal balance reports."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core import (
    IdempotencyKeyReused,
    InvalidInput,
    TransactionStatus,
    TransactionType,
)
from mana_credits_core.errors import UserNotFound
from mana_credits_core.events import Event, EventKind
from mana_credits_core.rewards import REWARD_APP, reward_key
from mana_credits_core.services import LedgerResult, Services

RACERS = 20


async def test_a_reward_is_a_community_grant_counted_as_earned(services: Services) -> None:
    heard: list[Event] = []
    services.events.subscribe(heard.append)
    done = await services.credits.reward("alice", 50, "feedback", "fb-1")
    e = done.entry
    assert (done.already_granted, done.balance_after) == (False, 50)
    assert (e.type, e.status, e.amount, e.app_id) == (
        TransactionType.GRANT,
        TransactionStatus.COMPLETED,
        50,
        REWARD_APP,
    )
    assert (e.balance_before, e.balance_after) == (0, 50)
    assert e.metadata == {"reason": "feedback", "referenceId": "fb-1"}
    assert e.description == "feedback"  # no description given: the reason
    assert e.idempotency_key == reward_key("fb-1")
    balance = await services.credits.balance("alice")
    assert (balance.balance, balance.total_earned, balance.total_spent) == (50, 50, 0)
    assert heard == [Event(EventKind.GRANT, credits=50)]
    described = await services.credits.reward(
        "alice", 5, "feedback", "fb-2", description="Thanks for the bug report"
    )
    assert described.entry.description == "Thanks for the bug report"
    assert (await services.reconcile.run()).ok


async def test_a_repeat_answers_the_original_grant_and_changes_nothing(
    services: Services,
) -> None:
    heard: list[Event] = []
    first = await services.credits.reward("alice", 50, "feedback", "fb-1")
    services.events.subscribe(heard.append)
    await services.credits.use("alice", 20, "chat", "spend")  # the balance moves on: 30
    again = await services.credits.reward("alice", 50, "feedback", "fb-1")
    assert again.already_granted
    assert (again.entry.id, again.balance_after) == (first.entry.id, 50)
    # Only the reference counts: another amount or reason for it grants nothing either.
    other = await services.credits.reward("alice", 999, "other", "fb-1", description="x")
    assert (other.already_granted, other.entry.id, other.entry.amount) == (
        True,
        first.entry.id,
        50,
    )
    assert (await services.credits.balance("alice")).balance == 30
    assert heard == []  # a repeat is not a grant
    assert len(await services.credits.transactions("alice")) == 2
    assert (await services.reconcile.run()).ok


async def test_references_are_per_user(services: Services) -> None:
    alice = await services.credits.reward("alice", 10, "feedback", "shared-ref")
    bob = await services.credits.reward("bob", 10, "feedback", "shared-ref")
    assert (alice.already_granted, bob.already_granted) == (False, False)
    assert alice.entry.id != bob.entry.id
    assert (await services.credits.balance("bob")).balance == 10


async def test_reward_keys_cannot_meet_client_keys(services: Services) -> None:
    """A client's own debit or refund key never replays, or blocks, a reward."""
    await services.credits.refund("alice", 100, "funds", idempotency_key="fb-1")
    await services.credits.use("alice", 10, "chat", "d", idempotency_key="reward:fb-1")
    await services.credits.use("alice", 10, "chat", "d", idempotency_key="reward fb-1")
    done = await services.credits.reward("alice", 50, "feedback", "fb-1")
    assert not done.already_granted
    assert (await services.credits.balance("alice")).balance == 130
    with pytest.raises(InvalidInput) as refused:  # the reward's own key is out of reach
        await services.credits.use("alice", 10, "chat", "d", idempotency_key=reward_key("fb-1"))
    assert refused.value.field == "idempotencyKey"
    assert (await services.credits.balance("alice")).balance == 130


@pytest.mark.parametrize(
    ("field", "arguments"),
    [
        ("userId", ("", 5, "feedback", "ref")),
        ("amount", ("alice", 0, "feedback", "ref")),
        ("amount", ("alice", 1.5, "feedback", "ref")),
        ("amount", ("alice", True, "feedback", "ref")),
        ("amount", ("alice", "10", "feedback", "ref")),
        ("reason", ("alice", 5, "", "ref")),
        ("reason", ("alice", 5, "r" * 65, "ref")),
        ("reason", ("alice", 5, "two\nlines", "ref")),
        ("referenceId", ("alice", 5, "feedback", "")),
        ("referenceId", ("alice", 5, "feedback", "x" * 129)),
        ("referenceId", ("alice", 5, "feedback", "nul\x00")),
    ],
)
async def test_bad_arguments_name_the_field_and_change_nothing(
    services: Services, field: str, arguments: tuple[object, ...]
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await services.credits.reward(*arguments)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert await services.credits.transactions("alice") == []


async def test_description_limits(services: Services) -> None:
    for bad in ("", "d" * 257):
        with pytest.raises(InvalidInput) as refused:
            await services.credits.reward("alice", 5, "feedback", "ref", description=bad)
        assert refused.value.field == "description"
    longest = await services.credits.reward("alice", 5, "r" * 64, "x" * 128, description="d" * 256)
    assert not longest.already_granted


async def test_twenty_racing_calls_with_one_reference_grant_once(services: Services) -> None:
    await services.credits.reward("alice", 5, "feedback", "earlier")
    results = await asyncio.gather(
        *(services.credits.reward("alice", 50, "feedback", "fb-race") for _ in range(RACERS))
    )
    assert sum(not r.already_granted for r in results) == 1
    assert len({r.entry.id for r in results}) == 1
    assert {r.balance_after for r in results} == {55}
    entries = await services.credits.transactions("alice")
    assert sum(e.idempotency_key == reward_key("fb-race") for e in entries) == 1
    assert (await services.credits.balance("alice")).balance == 55
    assert (await services.reconcile.run()).ok


@pytest.mark.postgres
@pytest.mark.parametrize("batching", [True, False], ids=["group-commit", "one-per-debit"])
async def test_racing_rewards_beside_racing_debits_on_postgres(
    clean_pg_store: SqlStore, tmp_path: Path, batching: bool
) -> None:
    """Debits go through group commit (when on) while the rewards race beside them."""
    settings = Settings(MANA_CREDITS_HOME=tmp_path, MANA_CREDITS_DEBIT_BATCHING=batching)
    services = build_services(clean_pg_store, settings, clock=TickingClock())
    try:
        await services.credits.refund("alice", 100, "funds")
        rewards = [services.credits.reward("alice", 50, "feedback", "fb") for _ in range(RACERS)]
        debits = [services.credits.use("alice", 3, "chat", "d") for _ in range(RACERS)]
        granted, used = await asyncio.gather(asyncio.gather(*rewards), asyncio.gather(*debits))
        assert sum(not r.already_granted for r in granted) == 1
        assert len({r.entry.id for r in granted}) == 1
        assert len(used) == RACERS
        balance = await services.credits.balance("alice")
        assert (balance.balance, balance.total_earned) == (100 + 50 - 3 * RACERS, 150)
        assert (await services.reconcile.run()).ok
    finally:
        await services.close()


async def test_the_summary_counts_every_entry_of_the_user(services: Services) -> None:
    fresh = await services.credits.balance_summary("nobody-yet")
    assert (fresh.balance.balance, fresh.transactions_count) == (0, 0)
    with pytest.raises(UserNotFound):  # a read: no balance was created
        await services.credits.existing_balance("nobody-yet")
    await services.credits.refund("alice", 100, "funds")
    await services.credits.use("alice", 10, "chat", "d")
    await services.credits.reward("alice", 5, "feedback", "fb")
    await services.credits.reward("alice", 5, "feedback", "fb")  # a repeat adds nothing
    await services.credits.grant("bob", 7, "support", "ops")  # another user's
    held = await services.reservations.reserve("alice", 4, "render")
    summary = await services.credits.balance_summary("alice")
    assert summary.transactions_count == 3  # a pending hold is no entry yet
    assert summary.balance.balance == 100 - 10 + 5 - 4
    await services.reservations.commit(held.reservation.id)
    assert (await services.credits.balance_summary("alice")).transactions_count == 4
    assert (await services.credits.balance_summary("bob")).transactions_count == 1


async def test_a_replayed_grant_key_must_ask_for_the_same_lot_terms(
    services: Services, clock: TickingClock
) -> None:
    async def grant(days: int, priority: int | None = None) -> LedgerResult:
        expiry = clock.now() + timedelta(days=days)
        return await services.credits.grant(
            "ina", 100, "promo", "ops", idempotency_key="g1", expires_at=expiry, priority=priority
        )

    first = await grant(30, 10)
    clock.advance(timedelta(minutes=5))  # "expires in 30 days" said again later: the same
    again = await grant(30, 10)
    assert again.replayed
    assert again.entry.id == first.entry.id
    for days, priority, differs in ((10, 10, "expiresAt"), (30, 20, "priority")):
        with pytest.raises(IdempotencyKeyReused) as refused:
            await grant(days, priority)
        assert refused.value.details["differs"] == [differs]
    with pytest.raises(IdempotencyKeyReused):  # never expiring is another request too
        await services.credits.grant("ina", 100, "promo", "ops", idempotency_key="g1", priority=10)
    assert [lot.amount for lot in await services.lots.of_user("ina")] == [100]
