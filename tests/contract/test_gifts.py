"""The gift code contract on every store, races included."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.settings import Settings
from mana_credits_core import InvalidInput, Principal, TransactionType
from mana_credits_core.errors import (
    CreditsError,
    GiftAlreadyClaimed,
    GiftCodeTaken,
    GiftExpired,
    GiftNotCancellable,
    GiftNotFound,
    GiftNotRedeemable,
    GiftWrongUser,
    InsufficientCreditsForGift,
)
from mana_credits_core.gifts import CODE_ALPHABET, CODE_LENGTH, GiftStatus, RedemptionStatus
from mana_credits_core.ports import Store
from mana_credits_core.services import Services

ALICE = Principal("alice", email="alice@example.com", name="Alice")
BOB = Principal("bob", email="Bob@Example.com")


class RepeatingCodes:
    """A code generator that repeats itself first, to force collisions."""

    def __init__(self, codes: list[str]) -> None:
        self._codes = codes

    def new_code(self) -> str:
        return self._codes.pop(0) if len(self._codes) > 1 else self._codes[0]


@pytest.fixture
async def gifts(store: Store, settings: Settings, clock: TickingClock) -> Services:
    services = build_services(store, settings, clock=clock)
    await services.credits.credit("alice", 1000, TransactionType.GRANT, "funds")
    return services


async def balance(services: Services, user: str) -> int:
    return (await services.credits.balance(user)).balance


async def test_create_moves_the_creators_credits_into_the_gift(gifts: Services) -> None:
    gift = await gifts.gifts.create(ALICE, 300, message="Happy birthday")
    assert len(gift.code) == CODE_LENGTH
    assert set(gift.code) <= set(CODE_ALPHABET)
    assert (gift.status, gift.redeemed, gift.total_credits) == (GiftStatus.ACTIVE, 0, 300)
    assert gift.creator_name == "Alice"
    assert await balance(gifts, "alice") == 700
    entries = await gifts.credits.transactions("alice", limit=1)
    assert (entries[0].id, entries[0].type, entries[0].amount) == (
        gift.reservation_transaction_id,
        TransactionType.GIFT,
        -300,
    )
    assert (await gifts.reconcile.run()).ok


async def test_create_that_does_not_fit_changes_nothing(gifts: Services) -> None:
    with pytest.raises(InsufficientCreditsForGift) as refused:
        await gifts.gifts.create(ALICE, 1001)
    assert refused.value.message == "Insufficient credits to create gift"
    assert await balance(gifts, "alice") == 1000
    assert await gifts.gifts.created("alice") == []
    with pytest.raises(InsufficientCreditsForGift):
        await gifts.gifts.create(Principal("nobody"), 1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"total_credits": 0}, "totalCredits"),
        ({"total_credits": 10_001}, "totalCredits"),
        ({"type": "personalized"}, "targetEmail"),
        ({"type": "personalized", "target_email": "not-an-email"}, "targetEmail"),
        ({"type": "bogus"}, "type"),
        ({"message": "x" * 501}, "message"),
        ({"expiration_days": 0}, "expirationDays"),
    ],
)
async def test_bad_gifts_are_invalid(
    gifts: Services, kwargs: dict[str, object], field: str
) -> None:
    args: dict[str, object] = {"total_credits": 10} | kwargs
    total = args.pop("total_credits")
    with pytest.raises(InvalidInput) as bad:
        await gifts.gifts.create(ALICE, total, **args)  # type: ignore[arg-type]
    assert bad.value.field == field
    assert await balance(gifts, "alice") == 1000


async def test_a_code_collision_is_retried(store: Store, settings: Settings) -> None:
    services = build_services(
        store,
        settings,
        clock=TickingClock(),
        codes=RepeatingCodes(["SAMECODE23", "SAMECODE23", "NEWC2DEXYZ"]),
    )
    await services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
    first = await services.gifts.create(ALICE, 10)
    second = await services.gifts.create(ALICE, 10)
    assert (first.code, second.code) == ("SAMECODE23", "NEWC2DEXYZ")
    assert await balance(services, "alice") == 80


async def test_a_code_that_keeps_colliding_gives_up_and_moves_nothing(
    store: Store, settings: Settings
) -> None:
    services = build_services(
        store, settings, clock=TickingClock(), codes=RepeatingCodes(["SAMECODE23"])
    )
    await services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
    await services.gifts.create(ALICE, 10)
    with pytest.raises(GiftCodeTaken):
        await services.gifts.create(ALICE, 10)
    assert await balance(services, "alice") == 90
    assert len(await services.gifts.created("alice")) == 1


async def test_codes_issued_before_keep_working(store: Store, settings: Settings) -> None:
    # 12 characters from the former alphabet (which had U), and the 6-character codes
    # of the service before that.
    services = build_services(
        store, settings, clock=TickingClock(), codes=RepeatingCodes(["ABCU2345WXYZ", "K7X9PQ"])
    )
    await services.credits.credit("alice", 100, TransactionType.GRANT, "funds")
    twelve = await services.gifts.create(ALICE, 10)
    six = await services.gifts.create(ALICE, 20)
    assert (twelve.code, six.code) == ("ABCU2345WXYZ", "K7X9PQ")
    assert (await services.gifts.info("abcu-2345-wxyz")).id == twelve.id
    assert (await services.gifts.info(" k7x 9pq ")).id == six.id
    assert (await services.gifts.redeem(BOB, "abcu 2345 wxyz")).credits_received == 10
    assert (await services.gifts.redeem(Principal("carol"), "k7x-9pq")).credits_received == 20
    with pytest.raises(GiftNotFound):
        await services.gifts.info("ABCU2345WX")  # the first ten of a longer code are no code


async def test_received_lists_successful_redemptions_only(gifts: Services) -> None:
    first = await gifts.gifts.create(ALICE, 30, message="One")
    personal = await gifts.gifts.create(
        ALICE, 40, type="personalized", target_email="someone@example.com"
    )
    second = await gifts.gifts.create(ALICE, 50)
    await gifts.gifts.redeem(BOB, first.code)
    with pytest.raises(GiftWrongUser):
        await gifts.gifts.redeem(BOB, personal.code)
    await gifts.gifts.redeem(BOB, second.code)
    with pytest.raises(GiftAlreadyClaimed):
        await gifts.gifts.redeem(BOB, first.code)
    received = await gifts.gifts.received("bob")
    assert [(r.code, r.redemption.credits_received, r.message) for r in received] == [
        (second.code, 50, None),
        (first.code, 30, "One"),
    ]
    assert {r.redemption.status for r in received} == {RedemptionStatus.SUCCESS}
    assert {r.creator_name for r in received} == {"Alice"}
    assert [g.code for g in (await gifts.gifts.received("bob", limit=1))] == [second.code]


async def test_an_expiry_moment_instead_of_days(gifts: Services, clock: TickingClock) -> None:
    moment = clock.now() + timedelta(days=3)
    gift = await gifts.gifts.create(ALICE, 10, expires_at=moment)
    assert gift.expires_at == moment
    naive = await gifts.gifts.create(ALICE, 10, expires_at=moment.replace(tzinfo=None))
    assert naive.expires_at == moment  # no offset: UTC
    for bad in (clock.now() - timedelta(seconds=1), clock.now() + timedelta(days=3651)):
        with pytest.raises(InvalidInput) as refused:
            await gifts.gifts.create(ALICE, 10, expires_at=bad)
        assert refused.value.field == "expiresAt"
    with pytest.raises(InvalidInput) as both:
        await gifts.gifts.create(ALICE, 10, expires_at=moment, expiration_days=3)
    assert both.value.field == "expiresAt"
    assert await balance(gifts, "alice") == 980


async def test_redeem_once_case_insensitive_by_a_new_user(gifts: Services) -> None:
    gift = await gifts.gifts.create(ALICE, 250, message="For you")
    typed = f" {gift.code[:3]}-{gift.code[3:6]} {gift.code[6:]} ".lower()
    done = await gifts.gifts.redeem(BOB, typed, source_app_id="web")
    assert (done.credits_received, done.creator_name, done.message) == (250, "Alice", "For you")
    assert done.new_balance == await balance(gifts, "bob") == 250
    with pytest.raises(GiftAlreadyClaimed):
        await gifts.gifts.redeem(Principal("carol"), gift.code)
    received = await gifts.gifts.received("bob")
    assert [
        (r.redemption.status, r.redemption.credits_received, r.redemption.source_app_id)
        for r in received
    ] == [(RedemptionStatus.SUCCESS, 250, "web")]
    assert [(r.code, r.message, r.creator_name) for r in received] == [
        (gift.code, "For you", "Alice")
    ]
    assert await gifts.gifts.received("carol") == []  # a failed attempt is no gift received
    info = await gifts.gifts.info(gift.code.lower())
    assert (info.status, info.redeemed) == (GiftStatus.DEPLETED, 1)
    with pytest.raises(GiftNotFound):
        await gifts.gifts.redeem(BOB, "NOPE-NOPE-NOPE")
    assert (await gifts.reconcile.run()).ok


async def test_personalized_gifts_only_for_the_target(gifts: Services) -> None:
    gift = await gifts.gifts.create(
        ALICE, 100, type="personalized", target_email="  bob@example.COM "
    )
    with pytest.raises(GiftWrongUser):
        await gifts.gifts.redeem(Principal("mallory", email="mallory@example.com"), gift.code)
    with pytest.raises(GiftWrongUser):
        await gifts.gifts.redeem(Principal("anon"), gift.code)
    assert await gifts.gifts.received("mallory") == []
    done = await gifts.gifts.redeem(BOB, gift.code)
    assert done.credits_received == 100


async def test_cancel_returns_credits_once_and_only_to_the_creator(gifts: Services) -> None:
    gift = await gifts.gifts.create(ALICE, 400)
    with pytest.raises(GiftNotFound):
        await gifts.gifts.cancel("bob", gift.id)
    assert await gifts.gifts.cancel("alice", gift.id) == 400
    assert await balance(gifts, "alice") == 1000
    with pytest.raises(GiftNotCancellable):
        await gifts.gifts.cancel("alice", gift.id)
    with pytest.raises(GiftNotRedeemable, match="Gift code is cancelled"):
        await gifts.gifts.redeem(BOB, gift.code)
    redeemed = await gifts.gifts.create(ALICE, 100)
    await gifts.gifts.redeem(BOB, redeemed.code)
    with pytest.raises(GiftNotCancellable):
        await gifts.gifts.cancel("alice", redeemed.id)
    assert (await gifts.reconcile.run()).ok


async def test_expired_gifts_return_their_credits(gifts: Services, clock: TickingClock) -> None:
    soon = await gifts.gifts.create(ALICE, 100, expiration_days=1)
    later = await gifts.gifts.create(ALICE, 200, expiration_days=30)
    on_the_spot = await gifts.gifts.create(ALICE, 50, expiration_days=1)
    clock.advance(timedelta(days=2))
    with pytest.raises(GiftExpired):
        await gifts.gifts.redeem(BOB, on_the_spot.code)
    assert await gifts.gifts.expire() == 1
    assert await gifts.gifts.expire() == 0
    assert (await gifts.gifts.info(soon.code)).status == GiftStatus.EXPIRED
    assert (await gifts.gifts.info(on_the_spot.code)).status == GiftStatus.EXPIRED
    assert (await gifts.gifts.info(later.code)).status == GiftStatus.ACTIVE
    assert await balance(gifts, "alice") == 800
    with pytest.raises(GiftExpired):
        await gifts.gifts.redeem(BOB, soon.code)
    assert (await gifts.reconcile.run()).ok


async def test_redeem_pending_at_registration(gifts: Services) -> None:
    for credits in (10, 20):
        await gifts.gifts.create(ALICE, credits, type="personalized", target_email="new@x.io")
    await gifts.gifts.create(ALICE, 40, type="personalized", target_email="other@x.io")
    await gifts.gifts.create(ALICE, 80)
    done = await gifts.gifts.redeem_pending("newcomer", "NEW@x.io")
    assert (done.redeemed, done.total_credits) == (2, 30)
    again = await gifts.gifts.redeem_pending("newcomer", "new@x.io")
    assert (again.redeemed, again.total_credits) == (0, 0)
    assert await balance(gifts, "newcomer") == 30


async def test_the_public_name_never_shows_an_email(gifts: Services) -> None:
    await gifts.credits.credit("dora", 10, TransactionType.GRANT, "funds")
    gift = await gifts.gifts.create(Principal("dora", email="dora.secret@example.com"), 5)
    assert gift.creator_name == "d***"
    assert "example.com" not in gift.creator_name


async def test_lists_are_newest_first(gifts: Services) -> None:
    for credits in (1, 2, 3):
        await gifts.gifts.create(ALICE, credits)
    assert [g.total_credits for g in await gifts.gifts.created("alice")] == [3, 2, 1]


# Races.


async def test_fifty_users_racing_for_one_code(gifts: Services) -> None:
    gift = await gifts.gifts.create(ALICE, 500)
    results = await asyncio.gather(
        *(gifts.gifts.redeem(Principal(f"user{i}"), gift.code) for i in range(50)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, GiftAlreadyClaimed) for r in results if isinstance(r, BaseException))
    total = sum([await balance(gifts, f"user{i}") for i in range(50)])
    assert total == 500
    assert (await gifts.reconcile.run()).ok


async def test_cancel_racing_redeem_has_one_winner(gifts: Services) -> None:
    for _ in range(5):
        gift = await gifts.gifts.create(ALICE, 100)
        results = await asyncio.gather(
            gifts.gifts.cancel("alice", gift.id),
            gifts.gifts.redeem(BOB, gift.code),
            return_exceptions=True,
        )
        assert sum(not isinstance(r, BaseException) for r in results) == 1, results
    assert await balance(gifts, "alice") + await balance(gifts, "bob") == 1000
    assert (await gifts.reconcile.run()).ok


async def test_expiry_sweep_racing_redeem_ends_each_gift_once(
    gifts: Services, clock: TickingClock
) -> None:
    made = [await gifts.gifts.create(ALICE, 10, expiration_days=1) for _ in range(10)]
    clock.advance(timedelta(days=1))
    # Redeems that find a gift overdue expire it on the spot, racing the sweep.
    await asyncio.gather(
        gifts.gifts.expire(),
        *(gifts.gifts.redeem(BOB, gift.code) for gift in made),
        gifts.gifts.expire(),
        return_exceptions=True,
    )
    statuses = [(await gifts.gifts.info(gift.code)).status for gift in made]
    assert set(statuses) <= {GiftStatus.EXPIRED, GiftStatus.DEPLETED}
    returns = [
        e for e in await gifts.credits.transactions("alice") if e.type == TransactionType.REFUND
    ]
    assert len(returns) == statuses.count(GiftStatus.EXPIRED)
    assert await balance(gifts, "alice") + await balance(gifts, "bob") == 1000
    assert (await gifts.reconcile.run()).ok


async def test_a_new_user_redeems_two_gifts_at_once(gifts: Services) -> None:
    first = await gifts.gifts.create(ALICE, 30)
    second = await gifts.gifts.create(ALICE, 70)
    newcomer = Principal("fresh-user")
    await asyncio.gather(
        gifts.gifts.redeem(newcomer, first.code), gifts.gifts.redeem(newcomer, second.code)
    )
    assert await balance(gifts, "fresh-user") == 100
    assert (await gifts.reconcile.run()).ok


async def test_twenty_gifts_at_once_against_a_balance_for_ten(gifts: Services) -> None:
    results = await asyncio.gather(
        *(gifts.gifts.create(ALICE, 100) for _ in range(20)), return_exceptions=True
    )
    made = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, InsufficientCreditsForGift)]
    assert (len(made), len(refused)) == (10, 10)
    assert all(isinstance(r, CreditsError) for r in results if isinstance(r, BaseException))
    assert await balance(gifts, "alice") == 0
    assert len(await gifts.gifts.created("alice")) == 10
    assert (await gifts.reconcile.run()).ok


@pytest.mark.parametrize("redeemer", ["", "   ", "a\x00b", "x" * 300, "\ud800"])
async def test_a_redeemer_that_is_no_user_id_is_invalid_input(
    services: Services, redeemer: str
) -> None:
    await services.credits.credit("alice", 50, TransactionType.GRANT, "funds")
    gift = await services.gifts.create(Principal("alice", email="a@example.com"), 10)
    with pytest.raises(InvalidInput) as bad:
        await services.gifts.redeem(Principal(redeemer, email="b@example.com"), gift.code)
    assert bad.value.field == "userId"
    assert (await services.gifts.info(gift.code)).status == GiftStatus.ACTIVE  # untouched
