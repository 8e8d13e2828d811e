"""Purchases end where Stripe's state of their payment says, whatever the order and the
number of webhook deliveries: every story of `payment_stories` with every schedule of
its events (a few hundred cases), on the memory store with the Stripe adapter's own
translation of events and objects (`ModelGateway`). The SQL stores run a subset through
the real SDK and the HTTP route (tests/http/test_payment_convergence.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.memory import MemoryStore
from mana_credits_adapters.settings import Settings
from mana_credits_core import TransactionType
from mana_credits_core.errors import PaymentProviderUnavailable
from mana_credits_core.services import Services

from ..fakes.model_gateway import ModelGateway
from ..fakes.payment_stories import (
    CREDITS,
    PRICE,
    STORIES,
    Delivery,
    Run,
    Schedule,
    Story,
    resent,
    schedules,
    with_duplicates,
)
from ..fakes.stripe_model import Json

pytestmark = pytest.mark.memory


async def play(story: Story, schedule: Schedule, home: Path) -> tuple[object, ...]:
    """Play the story on a fresh store and Stripe; the purchase and balance in the end."""
    gateway = ModelGateway()
    services = build_services(
        MemoryStore(), Settings(MANA_CREDITS_HOME=home), clock=TickingClock(), payments=gateway
    )
    package = await services.purchases.add_package("Plus", CREDITS, PRICE)
    started = (await services.purchases.start("alice", package.id)).purchase
    assert started.stripe_payment_intent_id is not None
    run = Run(gateway.model, started.stripe_payment_intent_id)
    published: dict[int, Json] = {}
    resends = itertools.count()
    for item in schedule:
        if isinstance(item, int):
            published[item] = story.steps[item](run)
            continue
        event = published[item.index]
        if item.resend:
            event = resent(event, next(resends))
        await services.purchases.handle(gateway.event(event))
    purchase = await services.purchases.get(started.id)
    balance = await services.credits.balance("alice")
    entries = await services.credits.transactions("alice", limit=100)
    credited = [e.amount for e in entries if e.type == TransactionType.PURCHASE]
    assert (await services.reconcile.run()).ok
    return purchase.status.value, purchase.clawed_back, balance.balance, balance.debt, credited


@pytest.mark.parametrize("story", STORIES, ids=[s.name for s in STORIES])
async def test_every_order_of_deliveries_ends_where_stripe_says(
    story: Story, tmp_path: Path
) -> None:
    expected = (
        story.status,
        story.clawed_back,
        story.balance,
        0,
        [CREDITS] if story.status == "completed" else [],
    )
    wrong = []
    played = 0
    for schedule in schedules(len(story.steps)):
        for variant in (schedule, with_duplicates(schedule, len(story.steps))):
            played += 1
            got = await play(story, variant, tmp_path)
            if got != expected:
                wrong.append(f"{_show(variant)} → {got}")
    assert played >= 2
    assert not wrong, f"expected {expected}, got:\n" + "\n".join(wrong[:10])


def _show(schedule: Schedule) -> str:
    return " ".join(
        f"step{item}" if isinstance(item, int) else f"e{item.index}{'+' if item.resend else ''}"
        for item in schedule
    )


def test_the_story_schedules_cover_every_order() -> None:
    three = list(schedules(3))
    assert len(three) == 15  # (2 * 3 - 1)!!
    after_all = [s for s in three if s[:3] == [0, 1, 2]]
    orders = {tuple(d.index for d in s[3:] if isinstance(d, Delivery)) for s in after_all}
    assert orders == set(itertools.permutations(range(3)))
    four = list(schedules(4))
    assert len(four) == 24 + 1
    assert sum(len(s.steps) for s in STORIES) > 2 * len(STORIES)


# Checkout with a delayed payment method (SEPA debit, …): the session completes unpaid,
# the payment succeeds or fails days later.


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Services, ModelGateway]:
    gateway = ModelGateway()
    services = build_services(
        MemoryStore(), Settings(MANA_CREDITS_HOME=tmp_path), clock=TickingClock(), payments=gateway
    )
    return services, gateway


@pytest.mark.parametrize("succeeds", [True, False], ids=["succeeded", "failed"])
async def test_a_delayed_checkout_payment_settles_on_the_session_events_alone(
    checkout: tuple[Services, ModelGateway], succeeds: bool
) -> None:
    services, gateway = checkout
    package = await services.purchases.add_package("Plus", CREDITS, PRICE)
    outcome = "async_payment_succeeded" if succeeds else "async_payment_failed"
    for order in itertools.permutations(range(2)):
        started = await services.purchases.start(
            "alice",
            package.id,
            success_url="https://a.example/ok",
            cancel_url="https://a.example/no",
        )
        session = started.purchase.stripe_checkout_session_id
        assert session is not None
        completed = gateway.model.complete_checkout(session, paid=False)
        settled = gateway.model.settle_checkout(session, succeeded=succeeds)
        # Only the Checkout Session's events: no payment_intent.* event arrives.
        chosen = [
            next(e for e in completed if e["type"] == "checkout.session.completed"),
            next(e for e in settled if e["type"] == f"checkout.session.{outcome}"),
        ]
        for n in order:
            await services.purchases.handle(gateway.event(chosen[n]))
        purchase = await services.purchases.get(started.purchase.id)
        assert purchase.status == ("completed" if succeeds else "failed"), order
        assert (
            purchase.stripe_payment_intent_id == completed[-1]["data"]["object"]["payment_intent"]
        )
    balance = await services.credits.balance("alice")
    assert balance.balance == (2 * CREDITS if succeeds else 0)
    assert (await services.reconcile.run()).ok


async def test_a_checkout_still_processing_stays_pending(
    checkout: tuple[Services, ModelGateway],
) -> None:
    services, gateway = checkout
    package = await services.purchases.add_package("Plus", CREDITS, PRICE)
    started = await services.purchases.start(
        "alice", package.id, success_url="https://a.example/ok", cancel_url="https://a.example/no"
    )
    session = started.purchase.stripe_checkout_session_id
    assert session is not None
    for event in gateway.model.complete_checkout(session, paid=False):
        await services.purchases.handle(gateway.event(event))
    assert (await services.purchases.get(started.purchase.id)).status == "pending"
    assert (await services.credits.balance("alice")).balance == 0


async def test_stripe_unreachable_leaves_the_event_to_be_delivered_again(
    checkout: tuple[Services, ModelGateway],
) -> None:
    services, gateway = checkout
    package = await services.purchases.add_package("Plus", CREDITS, PRICE)
    started = (await services.purchases.start("alice", package.id)).purchase
    assert started.stripe_payment_intent_id is not None
    success = gateway.model.pay(started.stripe_payment_intent_id)[-1]
    gateway.down = True
    with pytest.raises(PaymentProviderUnavailable):
        await services.purchases.handle(gateway.event(success))
    gateway.down = False
    assert await services.purchases.handle(gateway.event(success)) == "credited"
    assert (await services.credits.balance("alice")).balance == CREDITS
