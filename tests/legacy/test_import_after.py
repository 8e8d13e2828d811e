"""After the switch: the imported data goes on working through this service's own paths
(HTTP routes, webhooks, sweeps, the billing run), on PostgreSQL and on SQLite. Each test
works on its own copy of the imported store and ends with reconcile passing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mana_credits_adapters.clock import ManualClock, TickingClock
from mana_credits_core.gifts import GiftStatus
from mana_credits_core.purchases import PurchaseStatus
from mana_credits_core.reservations import ReservationStatus
from mana_credits_core.services import Services
from mana_credits_core.sync import BillingInterval, add_months

from ..fakes.stripe_server import payload, sign, start_fake_stripe
from ..http.conftest import Jwks, bearer, service
from .book import at
from .expected import held_reservations, keyless_grants, old_entries, openings, overdue_gifts
from .fixture import (
    EXPIRED_ACTIVE_GIFT,
    PENDING_PAYMENT_INTENT,
    PENDING_PURCHASE,
    PENDING_PURCHASE_USER,
    PERSONALIZED_GIFT,
    PERSONALIZED_GIFT_CODE,
    PERSONALIZED_GIFT_EMAIL,
    REPLAY,
    STUCK_RESERVATION,
    SYNC_ACTIVE_NEXT_CHARGE_AT,
    SYNC_ACTIVE_USER,
    SYNC_GIFTED_USER,
    SYNC_PAUSED_USER,
    query,
)
from .importing import Imported, Target, Targets, served, services_on

AFTER_SWITCH = at("2026-12-01 12:00")
"""The services' clock in these tests: a few days after the data set's last activity."""
NEWCOMER = "u-friend"  # the personalized gift's addressee, signing up after the switch


@pytest.fixture
def own(imported: Imported, targets: Targets) -> Target:
    """A copy of the imported store, for this test to change."""
    return targets.copy(imported.target)


async def balances(services: Services, *users: str) -> dict[str, int]:
    return {user: (await services.credits.balance(user)).balance for user in users}


async def reconciled(services: Services) -> None:
    report = await services.reconcile.run()
    assert report.ok, report.drifts


async def test_the_old_personalized_gift_is_redeemed_by_its_target_only(
    own: Target, legacy_url: str, jwks: Jwks, tmp_path: Path
) -> None:
    ((credits, creator),) = query(
        legacy_url,
        "SELECT total_credits, creator_id FROM gifts.gift_codes WHERE id = %(id)s",
        {"id": PERSONALIZED_GIFT},
    )
    clock = TickingClock(AFTER_SWITCH)
    async with (
        services_on(own, tmp_path, clock=clock, jwks=jwks) as services,
        served(services, tmp_path, jwks, own) as client,
    ):
        before = await balances(services, creator)
        path = f"/api/v1/gifts/{PERSONALIZED_GIFT_CODE.lower()}/redeem"
        stranger = await client.post(path, headers=bearer(jwks.token("u-bruno")))
        assert stranger.status == 403, await stranger.text()
        addressee = jwks.token(NEWCOMER, email=PERSONALIZED_GIFT_EMAIL.lower())
        response = await client.post(path, headers=bearer(addressee))
        answer = await response.json()
        assert response.status == 200, answer
        assert (answer["creditsReceived"], answer["newBalance"]) == (credits, credits)
        again = await client.post(path, headers=bearer(addressee))
        assert (again.status, (await again.json())["code"]) == (400, "gift_already_claimed")
        assert await balances(services, NEWCOMER, creator) == {NEWCOMER: credits} | before
        gift = await services.gifts.lookup(PERSONALIZED_GIFT)
        assert gift.status is GiftStatus.DEPLETED
        await reconciled(services)


async def test_the_old_personalized_gift_is_redeemed_at_sign_up(
    own: Target, legacy_url: str, jwks: Jwks, tmp_path: Path
) -> None:
    ((credits,),) = query(
        legacy_url,
        "SELECT total_credits FROM gifts.gift_codes WHERE id = %(id)s",
        {"id": PERSONALIZED_GIFT},
    )
    async with (
        services_on(own, tmp_path, clock=TickingClock(AFTER_SWITCH), jwks=jwks) as services,
        served(services, tmp_path, jwks, own) as client,
    ):
        response = await client.post(
            "/api/v1/internal/gifts/redeem-pending",
            json={"userId": NEWCOMER, "email": PERSONALIZED_GIFT_EMAIL},
            headers=service(),
        )
        answer = await response.json()
        assert response.status == 200, answer
        assert answer == {"redeemed": 1, "totalCredits": credits}
        assert await balances(services, NEWCOMER) == {NEWCOMER: credits}
        await reconciled(services)


async def test_the_expiry_sweep_returns_overdue_old_gifts_to_their_creators(
    own: Target, legacy_url: str, tmp_path: Path
) -> None:
    overdue = overdue_gifts(legacy_url, AFTER_SWITCH)
    assert EXPIRED_ACTIVE_GIFT in overdue
    creators = {creator for creator, _ in overdue.values()}
    returned = {c: sum(n for who, n in overdue.values() if who == c) for c in creators}
    async with services_on(own, tmp_path, clock=TickingClock(AFTER_SWITCH)) as services:
        before = await balances(services, *creators)
        assert await services.gifts.expire() == len(overdue)
        assert await services.gifts.expire() == 0
        assert await balances(services, *creators) == {
            creator: before[creator] + returned[creator] for creator in creators
        }
        for gift_id in overdue:
            assert (await services.gifts.lookup(gift_id)).status is GiftStatus.EXPIRED
        await reconciled(services)


async def test_the_pending_purchase_is_completed_by_its_signed_webhook(
    own: Target, legacy_url: str, jwks: Jwks, tmp_path: Path
) -> None:
    ((credits, price, status),) = query(
        legacy_url,
        "SELECT credits, price_euro_cents, status::text FROM credits.purchases WHERE id = %(id)s",
        {"id": PENDING_PURCHASE},
    )
    assert status == "pending"
    # The intent the old service created, paid now at (the fake) Stripe: this service
    # reads it there and finds the purchase by the intent's id.
    fake, server = await start_fake_stripe()
    try:
        made = fake._intent(price, "eur", None, {})
        fake.intents.pop(made["id"])
        made["id"] = PENDING_PAYMENT_INTENT
        fake.intents[PENDING_PAYMENT_INTENT] = made
        published = [payload(e) for e in fake.pay(PENDING_PAYMENT_INTENT)]
        async with (
            services_on(
                own, tmp_path, clock=TickingClock(AFTER_SWITCH), jwks=jwks, stripe_url=fake.url
            ) as services,
            served(services, tmp_path, jwks, own, stripe_url=fake.url) as client,
        ):
            before = await balances(services, PENDING_PURCHASE_USER)
            for body in published * 2:  # Stripe resends
                headers = {"Content-Type": "application/json", "Stripe-Signature": sign(body)}
                response = await client.post("/api/v1/webhooks/stripe", data=body, headers=headers)
                assert response.status == 200, await response.text()
            assert await balances(services, PENDING_PURCHASE_USER) == {
                PENDING_PURCHASE_USER: before[PENDING_PURCHASE_USER] + credits
            }
            purchase = await services.purchases.get(PENDING_PURCHASE)
            assert purchase.status is PurchaseStatus.COMPLETED
            await reconciled(services)
    finally:
        await server.close()


async def test_the_active_subscription_is_charged_at_its_old_date_and_not_before(
    own: Target, tmp_path: Path
) -> None:
    watched = (SYNC_ACTIVE_USER, SYNC_PAUSED_USER, SYNC_GIFTED_USER)
    clock = ManualClock(SYNC_ACTIVE_NEXT_CHARGE_AT - timedelta(seconds=1))
    async with services_on(own, tmp_path, clock=clock) as services:
        start = await balances(services, *watched)
        history = {user: len(await services.credits.transactions(user, 100)) for user in watched}
        await services.sync.charge_due()
        assert await balances(services, *watched) == start
        clock.set(SYNC_ACTIVE_NEXT_CHARGE_AT)
        await services.sync.charge_due()
        await services.sync.charge_due()  # the period is paid: nothing more
        price = BillingInterval.MONTHLY.price
        assert await balances(services, *watched) == start | {
            SYNC_ACTIVE_USER: start[SYNC_ACTIVE_USER] - price
        }
        newest = (await services.credits.transactions(SYNC_ACTIVE_USER, 1))[0]
        assert (newest.app_id, newest.amount, newest.created_at) == (
            "sync",
            -price,
            SYNC_ACTIVE_NEXT_CHARGE_AT,
        )
        for user in watched:
            grown = len(await services.credits.transactions(user, 100)) - history[user]
            assert grown == (user == SYNC_ACTIVE_USER), user
        active = await services.sync.status(SYNC_ACTIVE_USER)
        assert active.active
        assert active.next_charge_at == add_months(SYNC_ACTIVE_NEXT_CHARGE_AT, 1)
        paused = await services.sync.status(SYNC_PAUSED_USER)
        assert not paused.active
        assert paused.paused_at is not None
        gifted = await services.sync.status(SYNC_GIFTED_USER)
        assert gifted.active
        assert gifted.gifted
        await reconciled(services)


async def test_an_old_idempotency_key_is_answered_as_a_replay(
    own: Target, legacy_url: str, jwks: Jwks, tmp_path: Path
) -> None:
    entries = old_entries(legacy_url)
    grant = next(g for g in keyless_grants(entries) if g["user_id"] == REPLAY.user_id)
    # The very request the old service answered, sent again: same amount, app,
    # description and metadata (any other request under that key is a 409).
    original = entries[REPLAY.entry_id]
    async with (
        services_on(own, tmp_path, clock=TickingClock(AFTER_SWITCH), jwks=jwks) as services,
        served(services, tmp_path, jwks, own) as client,
    ):
        before = await balances(services, REPLAY.user_id)
        response = await client.post(
            "/api/v1/internal/credits/use",
            json={
                "userId": REPLAY.user_id,
                "amount": -REPLAY.amount,
                "appId": REPLAY.app_id,
                "description": original["description"],
                "metadata": original["metadata"],
                "idempotencyKey": REPLAY.idempotency_key,
            },
            headers=service(REPLAY.app_id),
        )
        answer = await response.json()
        assert response.status == 200, answer
        assert answer["message"] == "Transaction already processed"
        assert (answer["transaction"]["id"], answer["transaction"]["amount"]) == (
            REPLAY.entry_id,
            REPLAY.amount,
        )
        assert "newBalance" not in answer
        # Another request under the old key is refused, as for any key.
        response = await client.post(
            "/api/v1/internal/credits/use",
            json={
                "userId": REPLAY.user_id,
                "amount": -REPLAY.amount,
                "appId": REPLAY.app_id,
                "description": "another request",
                "idempotencyKey": REPLAY.idempotency_key,
            },
            headers=service(REPLAY.app_id),
        )
        assert response.status == 409, await response.text()
        # An old grant (no key in the old database) repeated by its referenceId.
        response = await client.post(
            "/api/v1/internal/credits/grant",
            json={
                "userId": REPLAY.user_id,
                "amount": grant["amount"],
                "reason": grant["metadata"]["reason"],
                "referenceId": grant["metadata"]["referenceId"],
            },
            headers=service(),
        )
        answer = await response.json()
        assert response.status == 200, answer
        assert (answer["alreadyGranted"], answer["transactionId"]) == (True, grant["id"])
        assert await balances(services, REPLAY.user_id) == before
        await reconciled(services)


async def test_stuck_reservations_are_released_by_the_sweep(
    own: Target, legacy_url: str, tmp_path: Path
) -> None:
    async with services_on(own, tmp_path, clock=TickingClock(AFTER_SWITCH)) as services:
        held = held_reservations(legacy_url, AFTER_SWITCH - services.reservations.ttl)
        assert STUCK_RESERVATION in held
        users = {user for user, _ in held.values()}
        before = await balances(services, *users)
        assert before == {user: openings(legacy_url)[user].balance for user in users}
        assert await services.reservations.release_expired() == len(held)
        assert await services.reservations.release_expired() == 0
        assert await balances(services, *users) == {
            user: before[user] + sum(n for who, n in held.values() if who == user) for user in users
        }
        for reservation_id in held:
            found = await services.reservations.get(reservation_id)
            assert found.status is ReservationStatus.EXPIRED
        await reconciled(services)
