"""The ledger contract: every store adapter must pass it unchanged."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from mana_credits_adapters.clock import TickingClock
from mana_credits_core import (
    BalanceNotFound,
    IdempotencyKeyReused,
    InsufficientCredits,
    InvalidInput,
    TransactionStatus,
    TransactionType,
)
from mana_credits_core.errors import UserNotFound
from mana_credits_core.services import Services
from mana_credits_core.validation import MAX_CREDITS, MAX_PAGE_SIZE


async def fund(services: Services, user: str, amount: int) -> None:
    await services.credits.credit(user, amount, TransactionType.GRANT, "test funds")


async def test_first_read_creates_a_zero_balance(services: Services) -> None:
    balance = await services.credits.balance("alice")
    assert (balance.balance, balance.total_earned, balance.total_spent) == (0, 0, 0)
    again = await services.credits.init_balance("alice")
    assert again == balance


async def test_concurrent_first_reads_all_succeed(services: Services) -> None:
    results = await asyncio.gather(*(services.credits.balance("new-user") for _ in range(20)))
    assert {r.balance for r in results} == {0}
    report = await services.reconcile.run()
    assert report.users_checked == 1
    assert report.ok


async def test_debit_moves_credits_and_records_the_entry(services: Services) -> None:
    await fund(services, "alice", 100)
    result = await services.credits.use(
        "alice", 30, "chat", "GPT answer", idempotency_key="k-1", metadata={"model": "x"}
    )
    entry = result.entry
    assert not result.replayed
    assert result.balance is not None
    assert (result.balance.balance, result.balance.total_spent) == (70, 30)
    assert (entry.amount, entry.balance_before, entry.balance_after) == (-30, 100, 70)
    assert entry.type == TransactionType.USAGE
    assert entry.status == TransactionStatus.COMPLETED
    assert (entry.app_id, entry.description, entry.idempotency_key) == ("chat", "GPT answer", "k-1")
    assert entry.metadata == {"model": "x"}
    assert entry.completed_at == entry.created_at
    assert entry.created_at.tzinfo is not None
    stored = await services.credits.transactions("alice")
    assert stored[0] == entry
    balance = await services.credits.balance("alice")
    assert (balance.balance, balance.total_earned, balance.total_spent) == (70, 100, 30)


async def test_debit_that_does_not_fit_changes_nothing(services: Services) -> None:
    await fund(services, "alice", 25)
    with pytest.raises(InsufficientCredits) as refused:
        await services.credits.use("alice", 26, "chat", "too much")
    assert (refused.value.required, refused.value.available) == (26, 25)
    assert refused.value.details == {"required": 26, "available": 25}
    assert (await services.credits.balance("alice")).balance == 25
    assert len(await services.credits.transactions("alice")) == 1


async def test_debit_of_exactly_the_balance_reaches_zero(services: Services) -> None:
    await fund(services, "alice", 25)
    result = await services.credits.use("alice", 25, "chat", "all of it")
    assert result.balance is not None
    assert result.balance.balance == 0


async def test_debit_without_a_balance_row_is_not_found(services: Services) -> None:
    with pytest.raises(BalanceNotFound):
        await services.credits.use("ghost", 1, "chat", "nothing")


@pytest.mark.parametrize(
    "amount", [0, -5, 1.5, "10", True, None, [10], float("nan"), 2**63, MAX_CREDITS + 1]
)
async def test_bad_amounts_are_invalid_input(services: Services, amount: object) -> None:
    await fund(services, "alice", 100)
    with pytest.raises(InvalidInput) as bad:
        await services.credits.use("alice", amount, "chat", "x")  # type: ignore[arg-type]
    assert bad.value.field == "amount"
    with pytest.raises(InvalidInput):
        await services.credits.refund("alice", amount, "x")  # type: ignore[arg-type]
    assert (await services.credits.balance("alice")).balance == 100


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("appId", {"app_id": ""}),
        ("appId", {"app_id": "a" * 101}),
        ("description", {"description": "   "}),
        ("description", {"description": "nul\x00byte"}),
        ("description", {"description": "x" * 501}),
        ("userId", {"user_id": ""}),
        ("userId", {"user_id": "bad\nid"}),
        ("idempotencyKey", {"idempotency_key": ""}),
        ("idempotencyKey", {"idempotency_key": "k\ud800"}),  # a lone surrogate
        ("userId", {"user_id": "\udfffalice"}),
        ("appId", {"app_id": "chat\ud800"}),
        ("description", {"description": "half a pair \ud83d"}),
        ("metadata", {"metadata": {"n": float("inf")}}),
        ("metadata", {"metadata": {"a": "\ud800"}}),
        ("metadata", {"metadata": {"\udbff": 1}}),
        ("userId", {"user_id": "alice\x85"}),  # a C1 control (NEL)
        ("userId", {"user_id": "alice\u2028"}),  # a line separator
        ("description", {"description": "bell\x9b"}),
        ("metadata", {"metadata": {"big": "x" * 9000}}),
    ],
)
async def test_bad_text_is_invalid_input(
    services: Services, field: str, kwargs: dict[str, object]
) -> None:
    await fund(services, "alice", 100)
    args: dict[str, object] = {
        "user_id": "alice",
        "amount": 5,
        "app_id": "chat",
        "description": "ok",
    } | kwargs
    with pytest.raises(InvalidInput) as bad:
        await services.credits.use(**args)  # type: ignore[arg-type]
    assert bad.value.field == field
    assert (await services.credits.balance("alice")).balance == 100


async def test_idempotent_replay_returns_the_original(services: Services) -> None:
    await fund(services, "alice", 100)
    first = await services.credits.use("alice", 10, "chat", "once", idempotency_key="k")
    second = await services.credits.use("alice", 10, "chat", "once", idempotency_key="k")
    assert second.replayed
    assert second.balance is None
    assert second.entry == first.entry
    assert (await services.credits.balance("alice")).balance == 90


async def test_replay_after_the_balance_ran_out_is_still_a_replay(services: Services) -> None:
    await fund(services, "alice", 10)
    first = await services.credits.use("alice", 10, "chat", "once", idempotency_key="k")
    second = await services.credits.use("alice", 10, "chat", "once", idempotency_key="k")
    assert second.replayed
    assert second.entry == first.entry


@pytest.mark.parametrize(("amount", "app"), [(11, "chat"), (10, "images")])
async def test_replay_of_a_key_for_another_operation_is_refused(
    services: Services, amount: int, app: str
) -> None:
    await fund(services, "alice", 100)
    await services.credits.use("alice", 10, "chat", "once", idempotency_key="k")
    with pytest.raises(IdempotencyKeyReused):
        await services.credits.use("alice", amount, app, "once", idempotency_key="k")
    assert (await services.credits.balance("alice")).balance == 90


async def test_idempotency_keys_are_scoped_to_the_user(services: Services) -> None:
    await fund(services, "alice", 100)
    await fund(services, "bob", 100)
    a = await services.credits.use("alice", 10, "chat", "a", idempotency_key="shared")
    b = await services.credits.use("bob", 20, "chat", "b", idempotency_key="shared")
    assert not b.replayed
    assert a.entry.id != b.entry.id
    assert b.entry.user_id == "bob"
    assert (await services.credits.balance("bob")).balance == 80


async def test_refund_credits_and_is_idempotent_by_key(services: Services) -> None:
    await fund(services, "alice", 10)
    first = await services.credits.refund("alice", 5, "failed job", idempotency_key="r-1")
    again = await services.credits.refund("alice", 5, "failed job", idempotency_key="r-1")
    assert first.entry.type == TransactionType.REFUND
    assert (first.entry.amount, first.entry.app_id) == (5, "system")
    assert again.replayed
    assert again.entry == first.entry
    balance = await services.credits.balance("alice")
    assert (balance.balance, balance.total_earned) == (15, 15)


async def test_refund_key_cannot_be_replayed_as_a_debit(services: Services) -> None:
    await fund(services, "alice", 10)
    await services.credits.refund("alice", 5, "x", idempotency_key="k")
    with pytest.raises(IdempotencyKeyReused):
        await services.credits.use("alice", 5, "system", "x", idempotency_key="k")


async def test_credit_creates_the_balance_of_a_new_user(services: Services) -> None:
    result = await services.credits.refund("newcomer", 7, "welcome back")
    assert result.balance is not None
    assert result.balance.balance == 7


async def test_history_is_newest_first_with_limit_and_offset(services: Services) -> None:
    await fund(services, "alice", 100)
    for i in range(5):
        await services.credits.use("alice", 1, "chat", f"use {i}")
    entries = await services.credits.transactions("alice", limit=3, offset=1)
    assert [e.description for e in entries] == ["use 3", "use 2", "use 1"]
    everything = await services.credits.transactions("alice")
    assert len(everything) == 6
    assert everything[-1].type == TransactionType.GRANT
    assert await services.credits.transactions("alice", offset=6) == []
    assert await services.credits.transactions("nobody") == []


async def test_history_limit_is_capped_and_offset_checked(services: Services) -> None:
    await fund(services, "alice", 500)
    for _ in range(MAX_PAGE_SIZE + 5):
        await services.credits.use("alice", 1, "chat", "x")
    assert len(await services.credits.transactions("alice", limit=1_000_000)) == MAX_PAGE_SIZE
    with pytest.raises(InvalidInput):
        await services.credits.transactions("alice", offset=-1)
    with pytest.raises(InvalidInput):
        await services.credits.transactions("alice", limit=0)


async def test_cursor_pages_through_the_whole_history(services: Services) -> None:
    await fund(services, "alice", 100)
    for i in range(11):
        await services.credits.use("alice", 1, "chat", f"use {i}")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await services.credits.transactions_page("alice", limit=4, cursor=cursor)
        seen += [e.description for e in page.entries]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"use {i}" for i in reversed(range(11))] + ["test funds"]
    with pytest.raises(InvalidInput):
        await services.credits.transactions_page("alice", cursor="not a cursor")


async def test_usage_is_counted_per_app_and_day(services: Services, clock: TickingClock) -> None:
    await fund(services, "alice", 100)
    await services.credits.use("alice", 3, "chat", "a")
    await services.credits.use("alice", 4, "chat", "b")
    await services.credits.use("alice", 5, "images", "c")
    clock.advance(timedelta(days=1))
    await services.credits.use("alice", 6, "chat", "d")
    async with services.store.unit_of_work() as uow:
        stats = await uow.usage.for_user("alice")
    rows = [(s.app_id, s.day.isoformat(), s.credits_used, s.operations) for s in stats]
    assert rows == [
        ("chat", "2026-01-01", 7, 2),
        ("images", "2026-01-01", 5, 1),
        ("chat", "2026-01-02", 6, 1),
    ]


async def test_unit_of_work_rolls_back_unless_committed(
    services: Services, clock: TickingClock
) -> None:
    async with services.store.unit_of_work() as uow:
        await uow.balances.ensure("bob", clock.now())
        assert await uow.balances.get("bob") is not None
    async with services.store.unit_of_work() as uow:
        assert await uow.balances.get("bob") is None
        await uow.balances.ensure("bob", clock.now())
        await uow.commit()
    async with services.store.unit_of_work() as uow:
        assert await uow.balances.get("bob") is not None


async def test_reconcile_finds_no_drift_after_mixed_work(services: Services) -> None:
    await fund(services, "alice", 100)
    await services.credits.use("alice", 10, "chat", "x", idempotency_key="a")
    await services.credits.refund("alice", 3, "y")
    held = await services.reservations.reserve("alice", 20, "job")
    await services.reservations.reserve("alice", 5, "pending job")
    await services.reservations.commit(held.reservation.id)
    report = await services.reconcile.run()
    assert report.ok, report.drifts
    assert report.users_checked == 1
    assert (await services.reconcile.run(user_id="alice")).ok


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("priority", {"priority": "5"}),
        ("priority", {"priority": 1.5}),
        ("priority", {"priority": True}),
        ("type", {"type": "grant"}),  # the enum, not its value
        ("type", {"type": None}),
        ("type", {"type": TransactionType.USAGE}),  # takes credits, does not add them
        ("type", {"type": TransactionType.EXPIRE}),
        ("type", {"type": TransactionType.CLAWBACK}),
        ("type", {"type": TransactionType.FORFEIT}),
    ],
)
async def test_bad_credit_terms_are_invalid_input(
    services: Services, field: str, kwargs: dict[str, object]
) -> None:
    args: dict[str, object] = {
        "user_id": "alice",
        "amount": 5,
        "type": TransactionType.GRANT,
        "description": "ok",
    } | kwargs
    with pytest.raises(InvalidInput) as bad:
        await services.credits.credit(**args)  # type: ignore[arg-type]
    assert bad.value.field == field
    with pytest.raises(UserNotFound):  # nothing was created
        await services.credits.existing_balance("alice")
