"""Races through many real connections: the store's constraints decide every winner."""

from __future__ import annotations

import asyncio

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.settings import Settings
from mana_credits_core import (
    InsufficientCredits,
    ReservationNotPending,
    TransactionType,
)
from mana_credits_core.ports import Store
from mana_credits_core.services import LedgerResult, Services


def wire(store: Store, settings: Settings) -> Services:
    return build_services(store, settings, clock=TickingClock())


async def test_fifty_concurrent_debits_never_overdraw(store: Store, settings: Settings) -> None:
    services = wire(store, settings)
    await services.credits.credit("hot", 100, TransactionType.GRANT, "funds")
    results = await asyncio.gather(
        *(services.credits.use("hot", 10, "chat", f"req {i}") for i in range(50)),
        return_exceptions=True,
    )
    ok = [r for r in results if isinstance(r, LedgerResult)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert (len(ok), len(refused)) == (10, 40)
    assert (await services.credits.balance("hot")).balance == 0
    assert sorted(r.entry.balance_after for r in ok) == list(range(0, 100, 10))
    assert (await services.reconcile.run()).ok


async def test_twenty_concurrent_replays_make_one_entry(store: Store, settings: Settings) -> None:
    services = wire(store, settings)
    await services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
    results = await asyncio.gather(
        *(
            services.credits.use("alice", 7, "chat", "same", idempotency_key="one-key")
            for _ in range(20)
        )
    )
    assert len({r.entry.id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert (await services.credits.balance("alice")).balance == 93
    assert len(await services.credits.transactions("alice")) == 2
    assert (await services.reconcile.run()).ok


async def test_concurrent_refunds_with_one_key_credit_once(
    store: Store, settings: Settings
) -> None:
    services = wire(store, settings)
    results = await asyncio.gather(
        *(services.credits.refund("bob", 5, "once", idempotency_key="r") for _ in range(20))
    )
    assert len({r.entry.id for r in results}) == 1
    assert (await services.credits.balance("bob")).balance == 5
    assert (await services.reconcile.run()).ok


async def test_commit_racing_refund_has_exactly_one_winner(
    store: Store, settings: Settings
) -> None:
    services = wire(store, settings)
    await services.credits.credit("alice", 1000, TransactionType.GRANT, "funds")
    for _ in range(10):
        held = await services.reservations.reserve("alice", 10, "race")
        rid = held.reservation.id
        results = await asyncio.gather(
            services.reservations.commit(rid),
            services.reservations.refund(rid),
            services.reservations.commit(rid),
            services.reservations.refund(rid),
            return_exceptions=True,
        )
        losers = [r for r in results if isinstance(r, ReservationNotPending)]
        assert len(losers) == 3, results
    balance = await services.credits.balance("alice")
    entries = await services.credits.transactions("alice", limit=100)
    committed = sum(1 for e in entries if e.type == TransactionType.USAGE)
    assert balance.balance == 1000 - 10 * committed
    assert (await services.reconcile.run()).ok


async def test_mixed_debits_and_holds_never_overdraw(store: Store, settings: Settings) -> None:
    services = wire(store, settings)
    await services.credits.credit("mixed", 100, TransactionType.GRANT, "funds")
    debits = [services.credits.use("mixed", 10, "chat", "d") for _ in range(10)]
    holds = [services.reservations.reserve("mixed", 10, "h") for _ in range(10)]
    results = await asyncio.gather(*debits, *holds, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 10
    assert all(isinstance(f, InsufficientCredits) for f in failures)
    assert (await services.credits.balance("mixed")).balance == 0
    assert (await services.reconcile.run()).ok
