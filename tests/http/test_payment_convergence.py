"""Payment stories end to end on SQLite and PostgreSQL: the real stripe SDK reads the fake
Stripe server, webhooks are signed and posted to the HTTP route. A representative
subset of `payment_stories` (every kind of fault, a few schedules each), delayed Checkout
payments, and a success event that meets a stopped database before its refund arrives.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql import migrate
from mana_credits_adapters.sql.store import SqlStore, create_engine
from mana_credits_core import TransactionType
from mana_credits_core.purchases import Package
from mana_credits_core.services import Services
from mana_credits_http import create_app

from ..conftest import own_cluster
from ..fakes.payment_stories import (
    CREDITS,
    PRICE,
    STORIES,
    Delivery,
    Run,
    Schedule,
    Story,
    resent,
    with_duplicates,
)
from ..fakes.stripe_model import Json
from ..fakes.stripe_server import FakeStripe
from ..postgres import PostgresCluster
from .conftest import Jwks
from .test_purchases import (  # noqa: F401  (fixtures)
    Client,
    buy,
    client,
    deliver,
    fake_stripe,
    of_type,
    shop,
    shop_settings,
)

CHOSEN = {
    "full refund": "(a) a refund known before the success",
    "refund of 3.33 €": "rounding in the buyer's favour",
    "chargeback won": "(b) a won dispute gives the credits back",
    "chargeback won, funds reinstated": "(b) seen as funds reinstated",
    "inquiry closed": "(c) an inquiry takes nothing",
    "chargeback of 6.00 € lost": "(d) the disputed amount only",
    "dispute naming only the charge": "(e) found by its charge",
    "refund failed": "(f) a failed refund gives the credits back",
    "one of two refunds failed": "(f) only the failed one",
    "refund, then a chargeback of the rest lost": "refunds and disputes together",
}
REPRESENTATIVE = [s for s in STORIES if s.name in CHOSEN]


def representative_schedules(steps: int) -> Iterator[Schedule]:
    """Each event right after its step; all steps first, events newest first, then
    with every event again (same id and resent)."""
    yield [item for n in range(steps) for item in (n, Delivery(n))]
    backwards: Schedule = [*range(steps), *(Delivery(n) for n in reversed(range(steps)))]
    yield backwards
    yield with_duplicates(backwards, steps)


@pytest.fixture
async def package(shop: Services) -> Package:  # noqa: F811
    return await shop.purchases.add_package("Plus", CREDITS, PRICE)


@pytest.mark.parametrize("story", REPRESENTATIVE, ids=[CHOSEN[s.name] for s in REPRESENTATIVE])
async def test_a_story_ends_where_stripe_says_through_the_webhook_route(
    client: Client,  # noqa: F811
    shop: Services,  # noqa: F811
    package: Package,
    jwks: Jwks,
    fake_stripe: FakeStripe,  # noqa: F811
    story: Story,
) -> None:
    assert len(REPRESENTATIVE) == len(CHOSEN)
    for n, schedule in enumerate(representative_schedules(len(story.steps))):
        user = f"buyer-{n}"
        started = await buy(client, jwks.token(user), package)
        intent = fake_stripe.intents[_intent_of(fake_stripe, started["purchaseId"])]
        run = Run(fake_stripe, intent["id"])
        published: dict[int, Json] = {}
        resends = itertools.count()
        for item in schedule:
            if isinstance(item, int):
                published[item] = story.steps[item](run)
                continue
            event = published[item.index]
            sent = resent(event, next(resends)) if item.resend else event
            assert await deliver(client, sent) == 200
        purchase = await shop.purchases.get(started["purchaseId"])
        balance = await shop.credits.balance(user)
        got = (purchase.status.value, purchase.clawed_back, balance.balance, balance.debt)
        assert got == (story.status, story.clawed_back, story.balance, 0), schedule
    assert (await shop.reconcile.run()).ok


def _intent_of(fake: FakeStripe, purchase_id: str) -> str:
    return next(i for i, o in fake.intents.items() if o["metadata"]["purchaseId"] == purchase_id)


@pytest.mark.parametrize("succeeds", [True, False], ids=["succeeded", "failed"])
async def test_a_delayed_checkout_payment_settles_on_the_session_events(
    client: Client,  # noqa: F811
    shop: Services,  # noqa: F811
    package: Package,
    jwks: Jwks,
    fake_stripe: FakeStripe,  # noqa: F811
    succeeds: bool,
) -> None:
    urls = {"successUrl": "https://app.example/ok", "cancelUrl": "https://app.example/cancel"}
    started = await buy(client, jwks.token(), package, **urls)
    session = next(iter(fake_stripe.sessions))
    completed = of_type(
        fake_stripe.complete_checkout(session, paid=False), "checkout.session.completed"
    )
    assert completed["data"]["object"]["payment_status"] == "unpaid"
    assert await deliver(client, completed) == 200
    assert (await shop.purchases.get(started["purchaseId"])).status == "pending"
    outcome = "async_payment_succeeded" if succeeds else "async_payment_failed"
    settled = fake_stripe.settle_checkout(session, succeeded=succeeds)
    # Only the session's events, the later one first: no payment_intent.* event.
    assert await deliver(client, of_type(settled, f"checkout.session.{outcome}")) == 200
    assert await deliver(client, completed | {"id": completed["id"] + "_resent"}) == 200
    purchase = await shop.purchases.get(started["purchaseId"])
    assert purchase.status == ("completed" if succeeds else "failed")
    assert (await shop.credits.balance("alice")).balance == (CREDITS if succeeds else 0)


async def test_an_event_for_no_purchase_of_ours_is_acknowledged(
    client: Client,  # noqa: F811
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    customer = fake_stripe.create_customer({})
    params = {"amount": 500, "currency": "eur", "customer": customer["id"], "metadata": {}}
    other = fake_stripe.create_intent(params)
    for event in fake_stripe.pay(other["id"]) + fake_stripe.dispute(other["id"], with_intent=False):
        assert await deliver(client, event) == 200


@pytest.mark.parametrize(
    "odd",
    [
        {"type": "payment_intent." + "x" * 200},
        {"id": "evt_" + "9" * 300},
        {"id": "evt_\u0000nul"},
        {"data": {"object": {"object": "charge", "id": "ch_\u0000", "payment_intent": None}}},
        {"data": {"object": {"id": "pi_x", "metadata": {"purchaseId": "p\u0000"}}}},
    ],
    ids=["long-type", "long-id", "nul-id", "nul-charge", "nul-purchase"],
)
async def test_a_signed_event_of_an_impossible_shape_is_acknowledged_not_a_500(
    client: Client,  # noqa: F811
    odd: Json,
) -> None:
    event: Json = {
        "id": "evt_odd",
        "object": "event",
        "type": "charge.refunded",
        "data": {"object": {"object": "charge", "id": "ch_unknown", "payment_intent": None}},
    } | odd
    assert await deliver(client, event) == 200


# The success event meets a stopped database (503, Stripe retries it later); the refund
# arrives after the database is back, before the retry.


@pytest.fixture(scope="module")
def haltable() -> Iterator[PostgresCluster]:
    yield from own_cluster()


@pytest.fixture
async def halting_shop(
    haltable: PostgresCluster,
    shop_settings: Settings,  # noqa: F811
) -> AsyncIterator[tuple[Services, Client]]:
    engine = create_engine(haltable.url)
    async with engine.begin() as connection:
        for schema in ("credits", "gifts"):
            await connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    await migrate.upgrade(engine)
    store = SqlStore(engine)
    services = build_services(store, shop_settings, clock=TickingClock())
    app = create_app(shop_settings, services=services)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield services, test_client
    await services.payments.close()
    await store.close()


async def until_ready(test_client: Client) -> None:
    """Until the server finds the database again (its pool drops dead connections)."""
    async with asyncio.timeout(60):  # a guard against hanging, not a measure
        while True:
            if (await test_client.get("/health/ready")).status == 200:
                return
            await asyncio.sleep(0.05)


@pytest.mark.postgres
async def test_a_success_refused_while_the_database_is_down_converges_after_the_refund(
    halting_shop: tuple[Services, Client],
    haltable: PostgresCluster,
    jwks: Jwks,
    fake_stripe: FakeStripe,  # noqa: F811
) -> None:
    services, test_client = halting_shop
    package = await services.purchases.add_package("Plus", CREDITS, PRICE)
    started = await buy(test_client, jwks.token(), package)
    intent = _intent_of(fake_stripe, started["purchaseId"])
    success = of_type(fake_stripe.pay(intent), "payment_intent.succeeded")
    haltable.halt()
    try:
        assert await deliver(test_client, success) == 503
    finally:
        haltable.resume()
    await until_ready(test_client)
    refunded = of_type(fake_stripe.refund(intent), "charge.refunded")
    assert await deliver(test_client, refunded) == 200
    assert await deliver(test_client, success) == 200  # Stripe's retry
    purchase = await services.purchases.get(started["purchaseId"])
    assert (purchase.status, purchase.clawed_back) == ("completed", CREDITS)
    balance = await services.credits.balance("alice")
    assert (balance.balance, balance.debt) == (0, 0)
    entries = await services.credits.transactions("alice")
    assert sorted((e.type, e.amount) for e in entries) == [
        (TransactionType.CLAWBACK, -CREDITS),
        (TransactionType.PURCHASE, CREDITS),
    ]
    assert (await services.reconcile.run()).ok
