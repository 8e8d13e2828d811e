"""Account deletion and export (GDPR art. 15, 17, 20) on every store, races included."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mana_credits_adapters.bootstrap import build_services
from mana_credits_adapters.clock import TickingClock
from mana_credits_adapters.memory import MemoryStore
from mana_credits_adapters.memory_users import MemoryUserData
from mana_credits_adapters.payments.dev import DEV_PAYMENTS, DevGateway, dev_payment
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_adapters.sql.users import SqlUserData
from mana_credits_core import InvalidInput, Principal, TransactionType
from mana_credits_core.errors import BalanceNotFound, CreditsError, GiftWrongUser, UserNotFound
from mana_credits_core.events import Event, EventKind
from mana_credits_core.gifts import GiftStatus, RedemptionStatus
from mana_credits_core.lots import LotSource
from mana_credits_core.ports import Erasure, Store
from mana_credits_core.purchases import PaymentChanged
from mana_credits_core.reservations import ReservationStatus
from mana_credits_core.services import LotRecord, Services

ZELDA = Principal("zelda-7f3a91", email="Zelda.Quist@example.org", name="Zelda Quist")
ALICE = Principal("alice", email="alice@example.com", name="Alice")
BOB = Principal("bob", email="bob@example.com")
CUSTOMER = "cus_dev_"  # the dev gateway's customer ids are derived from the user id
SECRETS = (
    ZELDA.user_id,
    "zelda.quist@example.org",
    "Zelda Quist",
    "For Bob, love Zelda",
    "Still yours, Zelda",
    "Welcome Zelda",
    "Render of zelda-project",
    "client-ref-zelda",
)


@dataclass
class World:
    services: Services
    store: Store
    customer_id: str
    pending_gift_for_zelda: str  # alice's, addressed to zelda's e-mail, never redeemed
    zeldas_active_gift: str
    clock: TickingClock


@pytest.fixture
async def world(store: Store, settings: Settings) -> World:
    """Zelda bought credits, gave a gift (redeemed by bob) and holds another, redeemed a
    personalized gift from alice, has another waiting, spent, reserved, pays for Sync."""
    clock = TickingClock()
    s = build_services(store, settings, clock=clock, payments=DevGateway("http://localhost:3061"))
    package = await s.purchases.add_package("Plus", 1100, 1000)
    started = await s.purchases.start(ZELDA.user_id, package.id, email=ZELDA.email)
    intent = started.purchase.stripe_payment_intent_id
    assert intent is not None
    assert started.purchase.stripe_customer_id is not None
    await s.purchases.handle(dev_payment(started.purchase))
    await s.credits.credit("alice", 500, TransactionType.GRANT, "funds")
    await s.credits.credit("bob", 10, TransactionType.GRANT, "funds")

    to_bob = await s.gifts.create(ZELDA, 100, message="For Bob, love Zelda")
    await s.gifts.redeem(BOB, to_bob.code)
    kept = await s.gifts.create(
        ZELDA, 40, type="personalized", target_email="bob@example.com", message="Still yours, Zelda"
    )
    for_zelda = await s.gifts.create(
        ALICE, 70, type="personalized", target_email=ZELDA.email, message="Welcome Zelda"
    )
    await s.gifts.redeem(ZELDA, for_zelda.code)
    waiting = await s.gifts.create(
        ALICE, 30, type="personalized", target_email="ZELDA.QUIST@example.org"
    )
    with pytest.raises(GiftWrongUser):  # the attempt is recorded
        await s.gifts.redeem(ZELDA, kept.code)

    await s.credits.use(
        ZELDA.user_id,
        25,
        "render",
        "Render of zelda-project",
        idempotency_key="client-ref-zelda",
        metadata={"project": "zelda-project"},
    )
    await s.reservations.reserve(ZELDA.user_id, 50, "Render of zelda-project")
    await s.sync.activate(ZELDA.user_id)
    await s.sync.gift("bob", ZELDA.user_id)  # zelda, an admin, gifted bob Cloud Sync
    assert await s.emails.note(ZELDA.user_id, ZELDA.email)  # as her token states it
    assert (await s.reconcile.run()).ok
    return World(s, store, started.purchase.stripe_customer_id, waiting.id, kept.id, clock)


async def credits_in_existence(s: Services) -> int:
    """Spendable balances + credits held by reservations + credits held by active gifts."""
    async with s.store.reader() as uow:
        spendable = sum([b.balance async for b in uow.balances.iterate()])
        held = sum((await uow.reservations.held_by_user()).values())
        gifts = await uow.gifts.recent(100, GiftStatus.ACTIVE)
    return spendable + held + sum(g.total_credits for g in gifts)


async def mentions(store: Store, needles: tuple[str, ...]) -> list[str]:
    """Where any needle still appears: every text column of every table the database
    has (found by reflection, not from our table definitions), or the whole state of the
    memory store."""
    if isinstance(store, MemoryStore):
        text = repr(vars(store.state)).lower()
        return [n for n in needles if n.lower() in text]
    assert isinstance(store, SqlStore)
    found: list[str] = []
    schemas: list[str | None] = ["credits", "gifts"] if store.dialect == "postgresql" else [None]
    async with store.engine.connect() as connection:
        columns = await connection.run_sync(lambda sync: text_columns(sync, schemas))
        assert len(columns) > 40  # every table was seen
        for schema, table, column in columns:
            as_text = sa.func.lower(sa.cast(sa.column(column), sa.Text))
            source = sa.table(table, sa.column(column), schema=schema)
            for needle in needles:
                query = sa.select(sa.func.count()).select_from(source)
                query = query.where(as_text.contains(needle.lower(), autoescape=True))
                if await connection.scalar(query):
                    found.append(f"{table}.{column}: {needle}")
    return found


def text_columns(connection: sa.Connection, schemas: list[str | None]) -> list[tuple[Any, ...]]:
    inspector = sa.inspect(connection)
    return [
        (schema, table, column["name"])
        for schema in schemas
        for table in inspector.get_table_names(schema=schema)
        for column in inspector.get_columns(table, schema=schema)
        if isinstance(column["type"], sa.String | sa.JSON)
    ]


async def test_the_export_lists_every_lot_spent_and_expired_ones_too(world: World) -> None:
    s, zelda = world.services, ZELDA.user_id
    granted_at = world.clock.now()
    soon = granted_at + timedelta(hours=2)
    later = granted_at + timedelta(days=3)
    short = await s.credits.grant(zelda, 15, "trial", "ops", expires_at=soon, priority=10)
    long = await s.credits.grant(zelda, 20, "goodwill", "ops", expires_at=later, priority=60)
    await s.credits.use(zelda, 5, "chat", "answer")  # priority 10 burns first
    world.clock.advance(timedelta(hours=3))
    assert await s.lots.expire() == 1
    lots = {lot.id: lot for lot in (await s.users.records(zelda)).lots}
    spent = lots[short.entry.id]
    expired_at = spent.expired_at
    assert expired_at is not None
    assert spent == LotRecord(
        id=short.entry.id,
        source=LotSource.GRANT,
        amount=15,
        remaining=0,  # 5 spent, 10 expired
        priority=10,
        expires_at=soon,
        created_at=spent.created_at,
        expired_at=expired_at,
    )
    assert granted_at < spent.created_at < soon < expired_at
    kept = lots[long.entry.id]
    assert (kept.source, kept.amount, kept.remaining, kept.priority) == (
        LotSource.GRANT,
        20,
        20,
        60,
    )
    assert (kept.expires_at, kept.expired_at) == (later, None)
    # Besides the grants: the purchase and alice's gift, every lot the store holds,
    # oldest first.
    assert [lot.id for lot in (await s.users.records(zelda)).lots] == [
        lot.id for lot in await s.lots.of_user(zelda)
    ]
    sources = [lot.source for lot in lots.values()]
    assert sorted(sources) == sorted(
        [LotSource.PURCHASE, LotSource.GIFT, LotSource.GRANT, LotSource.GRANT]
    )
    assert (
        sum(lot.remaining for lot in lots.values()) == (await s.credits.balance(zelda)).balance + 50
    )  # the reservation's held credits are still in their lots
    assert (await s.reconcile.run()).ok
    # Deleted: the old id holds no lots any more.
    await s.users.delete(zelda)
    assert (await s.users.records(zelda)).lots == []


async def test_the_fixture_really_holds_zeldas_data(world: World) -> None:
    found = await mentions(world.store, (*SECRETS, world.customer_id))
    assert len(found) >= len(SECRETS)  # the search finds what is there


async def test_deletion_keeps_the_accounts_and_forgets_the_person(world: World) -> None:
    s = world.services
    zelda = ZELDA.user_id
    before = await credits_in_existence(s)
    alice_before = (await s.credits.balance("alice")).balance
    bob_before = await s.credits.balance("bob")
    purchases_before = await s.purchases.all_purchases(100)
    # 1100 bought + 70 received - 100 - 40 given - 25 spent - 50 reserved - 30 (Sync)
    assert (await s.credits.balance(zelda)).balance == 925

    heard: list[Event] = []
    s.events.subscribe(heard.append)
    done = await s.users.delete(zelda, email="zelda.quist@EXAMPLE.org")
    assert done.deleted_count > 0
    assert sorted(e.credits for e in heard if e.kind == EventKind.GIFT_CANCELLED) == [30, 40]
    # The reservation (50) and the unredeemed gift (40) come back before the forfeit.
    assert (done.forfeited, done.gifts_cancelled) == (925 + 50 + 40, 2)

    # The old id has no balance, no ledger, no gifts, no purchases, no subscription.
    with pytest.raises(UserNotFound):
        await s.credits.existing_balance(zelda)
    assert await s.credits.transactions(zelda) == []
    assert await s.gifts.created(zelda) == []
    assert await s.gifts.received(zelda) == []
    assert await s.purchases.purchases(zelda) == []
    assert await s.sync.find(zelda) is None
    records = await s.users.records(zelda)
    assert records.email is None
    assert records.balance is None
    assert records.subscription is None
    assert not (records.purchases)
    assert not (records.gifts_created)
    assert not records.redemptions
    assert not (records.reservations)
    assert not (records.usage)
    assert not records.gifts_received
    assert [e async for e in s.users.ledger(zelda)] == []

    # Nothing anywhere mentions the id, the e-mail, the name, the messages, the texts.
    assert await mentions(world.store, (*SECRETS, world.customer_id)) == []

    # The accounts: only the forfeited balance left the system.
    assert await credits_in_existence(s) == before - done.forfeited
    assert (await s.credits.balance("alice")).balance == alice_before + 30  # gift returned
    assert await s.credits.balance("bob") == bob_before
    after = await s.purchases.all_purchases(100)
    assert len(after) == len(purchases_before) == 1
    assert (after[0].credits, after[0].price_euro_cents, after[0].status) == (
        purchases_before[0].credits,
        purchases_before[0].price_euro_cents,
        purchases_before[0].status,
    )
    pseudonym = after[0].user_id
    assert pseudonym != zelda
    assert after[0].stripe_customer_id is None
    kept = await s.credits.existing_balance(pseudonym)
    assert (kept.balance, kept.total_earned) == (0, 1100 + 70 + 40)  # 40: gift returned
    history = await s.credits.transactions(pseudonym, limit=100)
    assert history[0].type == TransactionType.FORFEIT
    assert (history[0].amount, history[0].balance_after) == (-done.forfeited, 0)
    assert all(e.metadata is None and e.idempotency_key is None for e in history)
    assert {e.description for e in history} == {e.type.value for e in history}
    # One pseudonym for every retained row.
    gifts = [g for g in await s.gifts.recent(100) if g.creator_id not in ("alice",)]
    assert {g.creator_id for g in gifts} == {pseudonym}
    assert {g.status for g in gifts} == {GiftStatus.DEPLETED, GiftStatus.CANCELLED}
    assert (await s.sync.find(pseudonym)) is not None
    assert not (await s.sync.status(pseudonym)).active
    assert (await s.sync.status("bob")).gifted  # bob keeps what zelda gifted him
    redemptions = await s.users.records(pseudonym)
    assert redemptions.email is None  # the address identifies the person
    assert await s.console.find_users("zelda") == []
    assert {r.status for r in redemptions.redemptions} == {
        RedemptionStatus.SUCCESS,
        RedemptionStatus.FAILED_WRONG_USER,
    }
    waiting = await s.gifts.lookup(world.pending_gift_for_zelda)
    assert (waiting.status, waiting.target_email, waiting.message) == (
        GiftStatus.CANCELLED,
        None,
        None,
    )
    assert (await s.reconcile.run()).ok


async def test_deletion_is_idempotent_and_unknown_users_are_a_no_op(world: World) -> None:
    s = world.services
    assert (await s.users.delete(ZELDA.user_id)).deleted_count > 0
    snapshot = await mentions(world.store, ("deleted-",))
    again = await s.users.delete(ZELDA.user_id, email=ZELDA.email)
    assert (again.deleted_count, again.forfeited, again.gifts_cancelled) == (0, 0, 0)
    assert (await s.users.delete("never-seen")).deleted_count == 0
    with pytest.raises(UserNotFound):
        await s.credits.existing_balance("never-seen")
    assert await mentions(world.store, ("deleted-",)) == snapshot
    assert (await s.reconcile.run()).ok


async def test_without_the_e_mail_a_gift_still_waiting_keeps_waiting(world: World) -> None:
    s = world.services
    await s.users.delete(ZELDA.user_id)
    # Zelda redeemed a gift for this address, so the waiting one is found anyway.
    waiting = await s.gifts.lookup(world.pending_gift_for_zelda)
    assert (waiting.status, waiting.target_email) == (GiftStatus.CANCELLED, None)
    assert (await s.reconcile.run()).ok


async def test_malformed_input_changes_nothing(world: World) -> None:
    s = world.services
    with pytest.raises(InvalidInput):
        await s.users.delete("")
    with pytest.raises(InvalidInput):
        await s.users.delete(ZELDA.user_id, email="not an address")
    assert (await s.credits.balance(ZELDA.user_id)).balance == 925


async def test_a_user_without_a_balance_is_deleted_too(store: Store, settings: Settings) -> None:
    s = build_services(store, settings, clock=TickingClock(), payments=DevGateway("http://x"))
    package = await s.purchases.add_package("Plus", 100, 100)
    await s.purchases.start("carol", package.id)  # never paid: no balance
    done = await s.users.delete("carol")
    assert (done.deleted_count, done.forfeited) == (2, 0)  # customer mapping + purchase
    assert await s.purchases.purchases("carol") == []
    assert (await s.reconcile.run()).ok


async def test_export_holds_everything_about_the_user(world: World) -> None:
    s = world.services
    zelda = ZELDA.user_id
    records = await s.users.records(zelda)
    assert records.email == "zelda.quist@example.org"  # trimmed and lower-cased
    assert records.balance is not None
    assert records.balance.balance == 925
    assert [p.credits for p in records.purchases] == [1100]
    assert [g.message for g in records.gifts_created] == [
        "For Bob, love Zelda",
        "Still yours, Zelda",
    ]
    assert [g.message for g in records.gifts_received] == ["Welcome Zelda"]
    assert len(records.redemptions) == 2
    assert records.subscription is not None
    assert records.subscription.active
    assert [(r.amount, r.status) for r in records.reservations] == [(50, ReservationStatus.PENDING)]
    assert [(u.app_id, u.credits_used) for u in records.usage] == [("render", 25), ("sync", 30)]
    entries = [e async for e in s.users.ledger(zelda, page=2)]  # several pages
    assert entries == list(reversed(await s.credits.transactions(zelda, limit=100)))
    assert len(entries) == 6


@pytest.mark.parametrize("batching", [True, False], ids=["group-commit", "one-by-one"])
async def test_deletion_racing_debits_ends_cleanly(
    sql_store: SqlStore, tmp_path: Path, batching: bool
) -> None:
    settings = Settings(MANA_CREDITS_HOME=tmp_path, MANA_CREDITS_DEBIT_BATCHING=batching)
    s = build_services(sql_store, settings, clock=TickingClock())
    try:
        for round_ in range(3):
            user = f"racer-{round_}"
            await s.credits.credit(user, 100, TransactionType.GRANT, "funds")

            async def debit(user: str = user) -> int:
                try:
                    await s.credits.use(user, 1, "app", "spend")
                except BalanceNotFound:
                    return 0
                return 1

            first = [asyncio.ensure_future(debit()) for _ in range(10)]
            deleting = asyncio.ensure_future(s.users.delete(user))
            then = [asyncio.ensure_future(debit()) for _ in range(10)]
            spent = sum(await asyncio.gather(*first, *then))
            done = await deleting
            assert spent + done.forfeited == 100
            with pytest.raises(UserNotFound):
                await s.credits.existing_balance(user)
            report = await s.reconcile.run()
            assert report.ok, report.drifts
    finally:
        await s.close()


async def test_a_dispute_after_deletion_claws_back_from_the_pseudonym(world: World) -> None:
    s = world.services
    [purchase] = await s.purchases.all_purchases(10)
    await s.users.delete(ZELDA.user_id)
    assert purchase.stripe_payment_intent_id is not None
    DEV_PAYMENTS.dispute(purchase.stripe_payment_intent_id, 1000)
    disputed = PaymentChanged(
        "d1", "charge.dispute.created", None, purchase.stripe_payment_intent_id
    )
    outcome = await s.purchases.handle(disputed)
    assert outcome.startswith("clawed back"), outcome
    [kept] = await s.purchases.all_purchases(10)
    owner = await s.credits.existing_balance(kept.user_id)
    assert (owner.balance, owner.debt) == (0, 1100)  # everything left was forfeited
    with pytest.raises(UserNotFound):
        await s.credits.existing_balance(ZELDA.user_id)
    assert (await s.reconcile.run()).ok


async def test_deletion_racing_everything_the_user_does_ends_cleanly(
    sql_store: SqlStore, tmp_path: Path
) -> None:
    """Gift cancels and redemptions, reservation holds and refunds, Sync charges and
    debits of the user, all at once with the deletion: each ends with an answer (an
    error of the service at worst, never a driver error), and nothing drifts."""
    s = build_services(
        sql_store,
        Settings(MANA_CREDITS_HOME=tmp_path),
        clock=TickingClock(),
        payments=DevGateway("http://localhost:3061"),
    )
    package = await s.purchases.add_package("Plus", 1100, 1000)
    try:
        for round_ in range(3):
            user = Principal(f"racer-{round_}", email=f"racer-{round_}@example.org")
            buying = (await s.purchases.start(user.user_id, package.id)).purchase
            intent = buying.stripe_payment_intent_id
            assert intent is not None
            await s.credits.credit(user.user_id, 1000, TransactionType.GRANT, "funds")
            await s.credits.credit("alice", 100, TransactionType.GRANT, "funds")
            mine = [await s.gifts.create(user, 10) for _ in range(4)]
            for_user = await s.gifts.create(ALICE, 20, type="personalized", target_email=user.email)
            held = [await s.reservations.reserve(user.user_id, 5, "job") for _ in range(4)]
            before = await credits_in_existence(s)
            flows_before = await flows(s)
            work = [
                s.purchases.handle(dev_payment(buying)),
                *(s.gifts.cancel(user.user_id, g.id) for g in mine[:2]),
                *(s.gifts.redeem(BOB, g.code) for g in mine[2:]),
                s.gifts.redeem(user, for_user.code),
                *(s.reservations.refund(h.reservation.id) for h in held[:2]),
                *(s.reservations.commit(h.reservation.id) for h in held[2:]),
                s.reservations.reserve(user.user_id, 5, "job"),
                s.sync.activate(user.user_id),
                *(s.credits.use(user.user_id, 1, "app", "spend") for _ in range(5)),
                *(s.credits.use("alice", 1, "app", "spend") for _ in range(5)),
            ]
            tasks = [asyncio.ensure_future(w) for w in work]
            deleting = asyncio.ensure_future(s.users.delete(user.user_id, email=user.email))
            results = await asyncio.gather(*tasks, return_exceptions=True)
            done = await deleting
            unexpected = [r for r in results if isinstance(r, BaseException)]
            assert all(isinstance(r, CreditsError) for r in unexpected), unexpected
            flowed = await flows(s) - flows_before
            assert await credits_in_existence(s) == before + flowed - done.forfeited
            with pytest.raises(UserNotFound):
                await s.credits.existing_balance(user.user_id)
            report = await s.reconcile.run()
            assert report.ok, report.drifts
    finally:
        await s.close()


async def test_deletion_racing_credits_and_activations_answers_every_call(
    sql_store: SqlStore, tmp_path: Path
) -> None:
    """Grants, rewards and Cloud Sync activations of users being deleted: a call that
    meets the deletion between making the user's row and locking it starts the user
    anew or answers an error of the service, never a driver error or an assertion."""
    s = build_services(sql_store, Settings(MANA_CREDITS_HOME=tmp_path), clock=TickingClock())
    try:
        for round_ in range(3):
            users = [f"gone-{round_}-{i}" for i in range(16)]
            for user in users:
                await s.credits.credit(user, 100, TransactionType.GRANT, "funds")
                await s.sync.activate(user)
                await s.sync.deactivate(user)
            work = [
                call
                for user in users
                for call in (
                    s.users.delete(user),
                    s.credits.grant(user, 5, "racing", "ops"),
                    s.credits.reward(user, 5, "racing", "ref"),
                    s.sync.activate(user),
                    s.credits.grant(user, 7, "racing", "ops"),
                )
            ]
            results = await asyncio.gather(*work, return_exceptions=True)
            unexpected = [r for r in results if isinstance(r, BaseException)]
            assert all(isinstance(r, CreditsError) for r in unexpected), unexpected
            report = await s.reconcile.run()
            assert report.ok, report.drifts
    finally:
        await s.close()


async def flows(s: Services) -> int:
    """Credits bought (in) less credits used by apps (out: debits, commits, Sync)."""
    outside = (TransactionType.PURCHASE, TransactionType.USAGE)
    return sum([e.amount async for e in s.credits.export() if e.type in outside])


class Interrupted(Exception):
    """Raised after the erasure, before the commit."""


async def test_a_deletion_interrupted_before_commit_changes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = world.services
    before = await s.users.records(ZELDA.user_id)
    ledger = [e async for e in s.users.ledger(ZELDA.user_id)]
    store = world.store
    kind: type[Any] = MemoryUserData if isinstance(store, MemoryStore) else SqlUserData
    erase = kind.erase

    async def erase_then_fail(self: Any, erasure: Erasure) -> int:
        await erase(self, erasure)
        raise Interrupted()

    monkeypatch.setattr(kind, "erase", erase_then_fail)
    with pytest.raises(Interrupted):
        await s.users.delete(ZELDA.user_id, email=ZELDA.email)
    monkeypatch.undo()
    assert await s.users.records(ZELDA.user_id) == before
    assert [e async for e in s.users.ledger(ZELDA.user_id)] == ledger
    assert len(await mentions(store, SECRETS)) >= len(SECRETS)
    assert (await s.reconcile.run()).ok
    assert (await s.users.delete(ZELDA.user_id)).deleted_count > 0
