"""A model-based test: Hypothesis drives the real server on each store (memory, SQLite,
PostgreSQL) and compares every answer with a model of balances, credit lots, keys,
reservations, gifts, Cloud Sync subscriptions and purchases; after every step the
reconcile invariants hold and every balance, lot and subscription the server reports is
the model's.

The model keeps each user's lots (amount, remaining, held, priority, expiry) and burns
them in its own copy of the burn order (priority, soonest expiry with non-expiring
last, oldest, id), so a store or a `lots.burn_key` that burns otherwise fails here.
Lots expire when something touches them past their date (a debit, a hold, a release,
the billing run) or when the expiry sweep runs; held credits expire only when their
hold is released.

Priced debits and reservations by operation (`docs/pricing.md`) run against the
model's own arithmetic: costs in milli-credits rounded up per unit size, each user's
accrual below a credit carried across debits, whole credits charged; reservations hold
the cost rounded up and commit all, a smaller amount or fewer units; prices change
between steps. After every step each user's accrual is the model's too.

The server's clock is a manual one the machine moves forward (`tick` by days, `wait`
by hours): then expired reservations are released, overdue gifts expire and the
billing run charges or pauses, as the background jobs would. Ids are counted, not
random, so every run of an example makes the same ids in the same order. Purchases are
paid through the real Stripe SDK against a local fake Stripe and confirmed by signed
webhooks, delivered once or twice.

CI runs a fixed (derandomized) set of examples; `nox -s stateful` runs many more
(`MANA_CREDITS_STATEFUL_EXAMPLES`, random seeds).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mana_credits_adapters.memory import MemoryState, MemoryStore
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_adapters.sql.tables import metadata
from mana_credits_core.errors import (
    BalanceNotFound,
    CreditsError,
    IdempotencyKeyReused,
    InsufficientCredits,
    InvalidInput,
    ReservationNotFound,
    ReservationNotPending,
)
from mana_credits_core.lots import DEFAULT_PRIORITY, Lot
from mana_credits_core.pricing import format_credits
from mana_credits_core.sync import BillingInterval, add_months

from ..conftest import STORES, truncate
from ..fakes.stripe_server import paid
from .live import START, CountingIds, LiveServer
from .server import email

USERS = ("ann", "bob", "cy", "dee")
EXAMPLES = int(os.environ.get("MANA_CREDITS_STATEFUL_EXAMPLES", "25"))
LOTS_EXAMPLES = EXAMPLES * 3 // 2  # fewer rules, so more examples for the same time
STEPS = 30
# Examples per store, as a share of the counts above: the rules live in the core, so
# the in-memory store (fast) runs the most; SQLite and PostgreSQL run the first of the
# same fixed examples, enough to exercise their persistence of every rule in the suite's
# time budget.
STORE_SHARE = {"memory": 1.5, "sqlite": 0.4, "postgres": 0.4}
DERANDOMIZE = os.environ.get("MANA_CREDITS_STATEFUL_RANDOM") != "1"
ERASED = "<erased>"  # a reservation, or a gift's addressee, removed by an account deletion
PSEUDONYM = "<pseudonym>"  # the creator of a deleted user's gifts


@dataclass
class ModelLot:
    """A lot as the model sees it; its id is learned from the store (`adopt`) and only
    breaks ties of the burn order between lots made at the same instant."""

    user: str
    amount: int
    priority: int
    expires_at: datetime | None
    created_at: datetime
    remaining: int
    held: int = 0
    expired: bool = False  # its expiry was applied (the store's `expired_at` is set)
    id: str | None = None

    @property
    def free(self) -> int:
        return self.remaining - self.held

    def due(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def burn_order(self) -> tuple[int, bool, datetime, datetime, str]:
        """The model's own burn order (deliberately not `lots.burn_key`): lower priority
        first, then the soonest expiry, lots that never expire last, then the oldest."""
        assert self.id is not None, self
        never = self.expires_at is None
        return (self.priority, never, self.expires_at or self.created_at, self.created_at, self.id)

    def return_order(self) -> tuple[bool, datetime, tuple[int, bool, datetime, datetime, str]]:
        """Of the lots that paid for a gift, the one expiring last (never expiring
        first of all) gives the credits coming back its terms."""
        return (self.expires_at is None, self.expires_at or self.created_at, self.burn_order())

    def seen(self) -> tuple[int, int, int, int, datetime | None, bool]:
        return (
            self.amount,
            self.remaining,
            self.held,
            self.priority,
            self.expires_at,
            self.expired,
        )


def stored(lot: Lot) -> tuple[int, int, int, int, datetime | None, bool]:
    return (
        lot.amount,
        lot.remaining,
        lot.held,
        lot.priority,
        lot.expires_at,
        lot.expired_at is not None,
    )


@dataclass
class Reservation:
    id: str
    user: str
    amount: int
    state: str = "pending"
    parts: list[tuple[ModelLot, int]] = field(default_factory=list)
    # A reservation by operation: its price when made, and the units reserved.
    price: ModelPrice | None = None
    quantity: int = 1


@dataclass(frozen=True)
class ModelPrice:
    """An operation's price: milli-credits per `unit_size` units."""

    app: str
    milli: int
    unit_size: int = 1

    def cost(self, quantity: int) -> int:
        """Milli-credits, rounded up to a whole one."""
        return -(-(self.milli * quantity) // self.unit_size)


# The operations the machine uses, at the price a store starts with (ai_summary and
# ai_tokens are created by the machine, the others are seeded). A token costs a third
# of a milli-credit, rounded up per debit.
PRICES = {
    "ai_chat_ollama": ModelPrice("chat", 100),
    "bulk_import": ModelPrice("notes", 200, 10),
    "ai_chat_gemini": ModelPrice("chat", 2000),
    "ai_summary": ModelPrice("notes", 350),
    "ai_tokens": ModelPrice("chat", 1, 3),
}


@dataclass
class Gift:
    id: str
    code: str
    creator: str
    amount: int
    target: str | None  # the user a personalized gift is for
    expires_at: datetime
    state: str = "active"
    # The priority and expiry its credits come back with: those of the lot that paid
    # for them and expires last (never, if one of them never expires).
    terms: tuple[int, datetime | None] = (DEFAULT_PRIORITY, None)


@dataclass
class Subscription:
    active: bool
    gifted: bool = False
    interval: BillingInterval = BillingInterval.MONTHLY
    next_interval: BillingInterval | None = None
    anchor: datetime = START
    months_paid: int = 0

    @property
    def next_charge_at(self) -> datetime:
        """The next charge, and the end of the time paid for."""
        return add_months(self.anchor, self.months_paid)

    @property
    def billed(self) -> BillingInterval:
        return self.next_interval or self.interval


@dataclass
class Purchase:
    id: str
    user: str
    credits: int
    intent: dict[str, Any]
    paid: bool = False


@dataclass
class Model:
    balances: dict[str, int] = field(default_factory=dict)
    keys: dict[tuple[str, str], tuple[str, str, int]] = field(default_factory=dict)
    reservations: list[Reservation] = field(default_factory=list)
    gifts: list[Gift] = field(default_factory=list)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    # (user, referenceId) → (transaction id, balance right after the reward)
    rewards: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    steps: int = 0
    erased_purchases: set[str] = field(default_factory=set)  # their buyer was deleted
    lots: dict[str, list[ModelLot]] = field(default_factory=dict)  # by user, oldest first
    prices: dict[str, ModelPrice] = field(default_factory=lambda: dict(PRICES))
    accrued: dict[str, int] = field(default_factory=dict)  # milli-credits, by user

    def due(self, user: str, cost: int) -> tuple[int, int]:
        """(whole credits due, milli-credits then carried) for a cost of `cost`."""
        return divmod(self.accrued.get(user, 0) + cost, 1000)

    def credit(
        self,
        user: str,
        amount: int,
        now: datetime,
        priority: int = DEFAULT_PRIORITY,
        expires_at: datetime | None = None,
    ) -> None:
        """Every credit is a new lot."""
        self.balances[user] = self.balances.get(user, 0) + amount
        lot = ModelLot(user, amount, priority, expires_at, now, remaining=amount)
        self.lots.setdefault(user, []).append(lot)

    def expire_due(self, user: str, now: datetime) -> int:
        """The free credits of the user's lots past their expiry expire, each lot once;
        how many lots expired."""
        count = 0
        for lot in self.lots.get(user, []):
            if lot.due(now) and lot.free > 0 and not lot.expired:
                self.balances[user] -= lot.free
                lot.remaining = lot.held
                lot.expired = True
                count += 1
        return count

    def burn(self, user: str, amount: int, now: datetime) -> list[tuple[ModelLot, int]]:
        """The lots `amount` credits come from, in burn order (the balance covers it)."""
        spendable = [lot for lot in self.lots.get(user, []) if lot.free > 0 and not lot.due(now)]
        parts = []
        needed = amount
        for lot in sorted(spendable, key=ModelLot.burn_order):
            part = min(lot.free, needed)
            parts.append((lot, part))
            needed -= part
            if needed == 0:
                return parts
        raise AssertionError(("the model's lots do not cover its balance", user, amount))

    def debit(self, user: str, amount: int, now: datetime) -> list[tuple[ModelLot, int]]:
        """Take `amount` credits in burn order; the lots they came from."""
        parts = self.burn(user, amount, now)
        for lot, part in parts:
            lot.remaining -= part
        self.balances[user] -= amount
        return parts

    def hold(self, held: Reservation, now: datetime) -> None:
        held.parts = self.burn(held.user, held.amount, now)
        for lot, part in held.parts:
            lot.held += part
        self.balances[held.user] -= held.amount

    def commit(self, held: Reservation, now: datetime, charged: int | None = None) -> None:
        """`charged` credits (None: all held) of the held ones are spent, the first in
        burn order; the rest go back as in `release`."""
        charged = held.amount if charged is None else charged
        spent: list[tuple[ModelLot, int]] = []
        rest: list[tuple[ModelLot, int]] = []
        for lot, part in sorted(held.parts, key=lambda p: p[0].burn_order()):
            take = min(part, charged)
            charged -= take
            if take:
                spent.append((lot, take))
            if part > take:
                rest.append((lot, part - take))
        for lot, part in spent:
            lot.held -= part
            lot.remaining -= part
        if rest:
            self.release_parts(held.user, rest, now)

    def release(self, held: Reservation, now: datetime) -> None:
        self.release_parts(held.user, held.parts, now)

    def release_parts(self, user: str, parts: list[tuple[ModelLot, int]], now: datetime) -> None:
        """Held credits go back to their lots; those of lots past their expiry then
        expire (held credits never expire while held)."""
        self.expire_due(user, now)
        for lot, part in parts:
            lot.held -= part
            if lot.due(now):
                lot.remaining -= part
                lot.expired = True
            else:
                self.balances[user] += part


amounts = st.integers(min_value=1, max_value=60)
users = st.sampled_from(USERS)
keys = st.sampled_from(["k1", "k2", "k3", "k4"])
references = st.sampled_from(["fb-1", "fb-2", "fb-3"])
intervals = st.sampled_from(list(BillingInterval))
# Hours from now; the simplest (first) expires, as most lots in these examples should.
expiries = st.sampled_from([24, 1, 72, None])
operations = st.sampled_from(sorted(PRICES))
quantities = st.sampled_from([None, 1, 3, 7, 15, 55, 120])
# New prices (credits as text): below a credit, a whole one, a milli-credit.
new_prices = st.sampled_from(["0.35", "0.1", "1.25", "0.001", "2", "0.07"])
SHARES = ["half", "one", "all", "over"]  # of a reservation a partial commit charges
priorities = st.sampled_from([0, DEFAULT_PRIORITY, 100])


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class LotsMachine(RuleBasedStateMachine):
    """Credits in and out, holds and time, against a model of every user's lots: the
    rules that move lots, so that examples of a few dozen steps combine them often."""

    server: LiveServer
    reservations = Bundle("reservations")

    def __init__(self) -> None:
        super().__init__()
        self.server.call(empty(self.server))
        self.server.call(self.server.services.purchases.ensure_default_catalogue())
        self.server.clock.set(START)
        self.model = Model()
        for operation, price in self.model.prices.items():  # emptied SQL stores have none
            work = self.server.services.prices.set(
                operation,
                format_credits(price.milli),
                operator="ops",
                app_id=price.app,
                name=operation,
                unit=None if price.unit_size == 1 else "item",
                unit_size=price.unit_size,
            )
            self.server.call(work)

    @property
    def now(self) -> datetime:
        return self.server.clock.now()

    def expiring_now(self, user: str) -> int:
        """The user's free credits in lots past their date, not yet expired."""
        lots = self.model.lots.get(user, [])
        return sum(lot.free for lot in lots if lot.due(self.now) and not lot.expired)

    # Money in.

    @rule(user=users, amount=amounts, key=st.none() | keys)
    def refund(self, user: str, amount: int, key: str | None) -> None:
        body: dict[str, Any] = {"userId": user, "amount": amount, "description": "refund"}
        if key is not None:
            body["idempotencyKey"] = "r-" + key
        answer = self.server.request("POST", "/api/v1/internal/credits/refund", body)
        prior = None if key is None else self.model.keys.get((user, "r-" + key))
        if prior is not None and prior[1:] != ("refund", amount):
            assert answer.status == 409, answer
            return
        assert answer.status == 200, answer
        if prior is not None:
            assert answer.body["transaction"]["id"] == prior[0]
            return
        self.model.credit(user, amount, self.now)
        assert answer.body["newBalance"]["balance"] == self.model.balances[user]
        if key is not None:
            self.model.keys[(user, "r-" + key)] = (
                answer.body["transaction"]["id"],
                "refund",
                amount,
            )

    @rule(user=users)
    def init(self, user: str) -> None:
        answer = self.server.request("POST", "/api/v1/internal/credits/init", {"userId": user})
        assert answer.status == 200, answer
        self.model.balances.setdefault(user, 0)
        assert answer.body["balance"] == self.model.balances[user]

    # Money out.

    @rule(user=users, amount=amounts, key=st.none() | keys)
    def debit(self, user: str, amount: int, key: str | None) -> None:
        body: dict[str, Any] = {
            "userId": user,
            "amount": amount,
            "appId": "chat",
            "description": "answer",
        }
        if key is not None:
            body["idempotencyKey"] = key
        answer = self.server.request("POST", "/api/v1/internal/credits/use", body)
        prior = None if key is None else self.model.keys.get((user, key))
        if prior is not None:
            if prior[1:] == ("use", amount):
                assert answer.status == 200, answer
                assert answer.body["transaction"]["id"] == prior[0]
            else:
                assert answer.status == 409, answer
            return
        if user not in self.model.balances:
            assert answer.status == 404, answer
            return
        # A debit expires the lots past their date first, and keeps that when refused.
        self.model.expire_due(user, self.now)
        if self.model.balances[user] < amount:
            assert answer.status == 402, answer
            assert answer.body["details"]["available"] == self.model.balances[user]
            return
        assert answer.status == 200, answer
        self.model.debit(user, amount, self.now)
        assert answer.body["newBalance"]["balance"] == self.model.balances[user]
        if key is not None:
            self.model.keys[(user, key)] = (answer.body["transaction"]["id"], "use", amount)

    # Two-phase debits.

    @rule(target=reservations, user=users, amount=amounts)
    def reserve(self, user: str, amount: int) -> Reservation | None:
        body = {"userId": user, "amount": amount, "reason": "render"}
        answer = self.server.request("POST", "/api/v1/internal/credits/reserve", body)
        if user not in self.model.balances:
            assert answer.status == 404, answer
            return None
        # A refused hold changes nothing, not even the expiry of lots past their date.
        if self.model.balances[user] - self.expiring_now(user) < amount:
            assert answer.status == 402, answer
            return None
        assert answer.status == 200, answer
        self.model.expire_due(user, self.now)
        held = Reservation(answer.body["reservationId"], user, amount)
        self.model.hold(held, self.now)
        assert answer.body["balance"] == self.model.balances[user]
        self.model.reservations.append(held)
        return held

    @rule(held=reservations)
    def commit(self, held: Reservation | None) -> None:
        if held is None:
            return
        body = {"reservationId": held.id, "description": "done"}
        answer = self.server.request("POST", "/api/v1/internal/credits/commit", body)
        if held.state == ERASED:  # its user was deleted, and the reservation with them
            assert answer.status == 404, answer
            return
        if held.state != "pending":  # the contract's answer to a second attempt
            assert answer.status == 400, answer
            assert answer.body["code"] == "reservation_not_pending"
            return
        assert answer.status == 200, answer
        held.state = "committed"
        self.model.commit(held, self.now)

    @rule(held=reservations)
    def release(self, held: Reservation | None) -> None:
        if held is None:
            return
        body = {"reservationId": held.id}
        answer = self.server.request("POST", "/api/v1/internal/credits/refund-reservation", body)
        if held.state == ERASED:
            assert answer.status == 404, answer
            return
        if held.state != "pending":  # the contract's answer to a second attempt
            assert answer.status == 400, answer
            assert answer.body["code"] == "reservation_not_pending"
            return
        assert answer.status == 200, answer
        held.state = "refunded"
        self.model.release(held, self.now)
        assert answer.body["balance"] == self.model.balances[held.user]

    # The price list: debits and reservations by operation.

    @rule(user=users, operation=operations, quantity=quantities, key=keys | st.none())
    def priced_debit(
        self, user: str, operation: str, quantity: int | None, key: str | None
    ) -> None:
        """A debit by operation: its cost joins the user's accrual, the whole credits
        due are charged. Keys are shared with `debit`: the same key for another
        request, priced or not, is refused."""
        work = self.server.services.credits.use_operation(
            user, operation, quantity, idempotency_key=key
        )
        units = quantity or 1
        prior = None if key is None else self.model.keys.get((user, key))
        if prior is not None:
            if prior[1:] == ("op:" + operation, units):
                result = self.server.call(work)
                assert (result.replayed, result.entry.id) == (True, prior[0])
            else:
                with pytest.raises(IdempotencyKeyReused):
                    self.server.call(work)
            return
        if user not in self.model.balances:
            with pytest.raises(BalanceNotFound):
                self.server.call(work)
            return
        self.model.expire_due(user, self.now)  # kept when refused, as for `debit`
        cost = self.model.prices[operation].cost(units)
        due, carried = self.model.due(user, cost)
        if self.model.balances[user] < due:
            with pytest.raises(InsufficientCredits) as refused:
                self.server.call(work)
            assert (refused.value.required, refused.value.available) == (
                due,
                self.model.balances[user],
            )
            return
        result = self.server.call(work)
        if due:
            self.model.debit(user, due, self.now)
        self.model.accrued[user] = carried
        assert result.entry.amount == -due
        assert result.entry.app_id == self.model.prices[operation].app
        assert result.entry.metadata is not None
        record = result.entry.metadata["pricing"]
        assert (record["costMilli"], record["accruedMilli"]) == (cost, carried)
        assert result.balance is not None
        assert result.balance.balance == self.model.balances[user]
        if key is not None:
            self.model.keys[(user, key)] = (result.entry.id, "op:" + operation, units)

    @precondition(lambda self: any(v[1].startswith("op:") for v in self.model.keys.values()))
    @rule(which=st.integers(min_value=0, max_value=7))
    def repeat_priced_debit(self, which: int) -> None:
        """Send a keyed priced debit again: the original answers, nothing accrues."""
        sent = sorted(
            (user, key, *value) for (user, key), value in self.model.keys.items()
            if value[1].startswith("op:")
        )  # fmt: skip
        user, key, entry_id, operation, units = sent[which % len(sent)]
        work = self.server.services.credits.use_operation(
            user, operation.removeprefix("op:"), units, idempotency_key=key
        )
        result = self.server.call(work)
        assert (result.replayed, result.entry.id) == (True, entry_id)

    @rule(
        user=users,
        operation=operations,
        quantity=quantities,
        then=st.tuples(st.sampled_from(SHARES), st.booleans()) | st.none(),
    )
    def reserve_operation(
        self, user: str, operation: str, quantity: int | None, then: tuple[str, bool] | None
    ) -> None:
        """Hold what the operation may cost: its cost rounded up to whole credits; then
        commit part of it (`then`), or leave it for `commit_part` or the passing of
        time. (Not in the bundle, whose rules come last in Hypothesis' draw.)"""
        work = self.server.services.reservations.reserve_operation(user, operation, quantity)
        if user not in self.model.balances:
            with pytest.raises(BalanceNotFound):
                self.server.call(work)
            return
        price = self.model.prices[operation]
        units = quantity or 1
        amount = -(-price.cost(units) // 1000)
        if self.model.balances[user] - self.expiring_now(user) < amount:
            with pytest.raises(InsufficientCredits):
                self.server.call(work)
            return
        held = self.server.call(work)
        self.model.expire_due(user, self.now)
        reservation = Reservation(held.reservation.id, user, amount, price=price, quantity=units)
        self.model.hold(reservation, self.now)
        assert held.reservation.amount == amount
        assert held.balance == self.model.balances[user]
        self.model.reservations.append(reservation)
        if then is not None:
            self.commit_share(reservation, *then)

    @precondition(lambda self: self.model.reservations)
    @rule(how=st.tuples(st.integers(0, 3), st.sampled_from(SHARES), st.booleans()))
    def commit_part(self, how: tuple[int, str, bool]) -> None:
        """Commit part of one of the newest reservations, in credits or (one made by
        operation) in units: half, one, all, or one more than reserved (refused); the
        rest is released. (One argument: Hypothesis draws rules with fewer more often.)"""
        newest, share, by_units = how
        held = self.model.reservations[-1 - newest % len(self.model.reservations)]
        self.commit_share(held, share, by_units)

    def commit_share(self, held: Reservation, share: str, by_units: bool) -> None:
        """Commit a `share` (`SHARES`) of `held`, in units if `by_units`."""
        whole = held.quantity if by_units else held.amount
        size = {"half": max(1, whole // 2), "one": 1, "all": whole, "over": whole + 1}[share]
        commit = self.server.services.reservations.commit
        work = commit(held.id, quantity=size) if by_units else commit(held.id, amount=size)
        if held.state == ERASED:
            with pytest.raises(ReservationNotFound):
                self.server.call(work)
            return
        if held.state != "pending":
            with pytest.raises(ReservationNotPending):
                self.server.call(work)
            return
        if size > whole or (by_units and held.price is None):
            with pytest.raises(InvalidInput):
                self.server.call(work)
            return
        entry = self.server.call(work)
        charged = size
        if by_units:
            assert held.price is not None
            charged, self.model.accrued[held.user] = self.model.due(
                held.user, held.price.cost(size)
            )
        held.state = "committed"
        self.model.commit(held, self.now, charged)
        assert entry.amount == -charged

    @rule(operation=operations, price=new_prices)
    def change_price(self, operation: str, price: str) -> None:
        """An operator changes a price: later debits and reservations pay it, the
        reservations made before keep theirs."""
        work = self.server.services.prices.set(operation, price, operator="ops")
        self.server.call(work)
        whole, _, part = price.partition(".")
        milli = int(whole) * 1000 + int((part + "000")[:3])
        old = self.model.prices[operation]
        self.model.prices[operation] = ModelPrice(old.app, milli, old.unit_size)

    @precondition(lambda self: self.model.steps > 0)
    @rule(held=consumes(reservations))
    def forget(self, held: Reservation | None) -> None:
        """Drop a reservation from the pool of ids the machine reuses (keeps it varied)."""

    # Admin: an operator's grant.

    @rule(user=users, amount=amounts, key=st.none() | keys)
    def grant(self, user: str, amount: int, key: str | None) -> None:
        ledger_key = None if key is None else "g-" + key
        prior = None if key is None else self.model.keys.get((user, "g-" + key))
        work = self.server.services.credits.grant(
            user, amount, "support", "operator", idempotency_key=ledger_key
        )
        if prior is not None and prior[1:] != ("grant", amount):
            with pytest.raises(CreditsError):
                self.server.call(work)
            return
        result = self.server.call(work)
        if prior is not None:
            assert (result.entry.id, result.replayed) == (prior[0], True)
            return
        self.model.credit(user, amount, self.now)
        assert result.balance is not None
        assert result.balance.balance == self.model.balances[user]
        if ledger_key is not None:
            self.model.keys[(user, ledger_key)] = (result.entry.id, "grant", amount)

    @initialize(
        lots=st.lists(st.tuples(users, amounts, expiries, priorities), min_size=1, max_size=4)
    )
    def lots_to_start_with(self, lots: list[tuple[str, int, int | None, int]]) -> None:
        """Most examples start with lots of mixed priority and expiry: the later holds,
        debits and expiries have something to choose among."""
        for user, amount, hours, priority in lots:
            self.grant_lot(user, amount, hours, priority)

    @rule(user=users, amount=amounts, hours=expiries, priority=priorities)
    def grant_lot(self, user: str, amount: int, hours: int | None, priority: int) -> None:
        """An operator's grant with a burn priority, expiring a few hours or days from now
        or never (few distinct values, so that lots tie on priority and expiry)."""
        expires_at = None if hours is None else self.now + timedelta(hours=hours)
        work = self.server.services.credits.grant(
            user, amount, "trial", "operator", expires_at=expires_at, priority=priority
        )
        result = self.server.call(work)
        self.model.credit(user, amount, self.now, priority, expires_at)
        assert result.balance is not None
        assert result.balance.balance == self.model.balances[user]

    @rule()
    def sweep_expired_lots(self) -> None:
        """The background sweep expires the free part of every lot past its date, once."""
        expired = self.server.call(self.server.services.lots.expire())
        assert expired == sum(self.model.expire_due(user, self.now) for user in USERS)

    # Time passes: the background jobs run.

    @rule(days=st.integers(min_value=1, max_value=120))
    def tick(self, days: int) -> None:
        self.time_passes(timedelta(days=days))

    @rule(hours=st.sampled_from([1, 5, 23, 48]))
    def wait(self, hours: int) -> None:
        """Less time passes: lots granted a few hours or days ahead come due."""
        self.time_passes(timedelta(hours=hours))

    def time_passes(self, delta: timedelta) -> None:
        now = self.server.clock.advance(delta)
        services = self.server.services
        released = self.server.call(services.reservations.release_expired())
        pending = [r for r in self.model.reservations if r.state == "pending"]
        assert released == len(pending)  # every reservation outlives its TTL by now
        for held in pending:
            held.state = "released"
            self.model.release(held, now)
        expired = self.server.call(services.gifts.expire())
        overdue = [g for g in self.model.gifts if g.state == "active" and g.expires_at <= now]
        assert expired == len(overdue)
        for gift in overdue:
            gift.state = "expired"
            self.model.credit(gift.creator, gift.amount, self.now, *gift.terms)
        for user in USERS:  # the billing run may burn the lots the gifts gave back
            self.adopt(user)
        answer = self.server.request("POST", "/api/v1/internal/sync/charge-recurring")
        assert answer.status == 200, answer
        charged = paused = 0
        for user, sub in sorted(self.model.subscriptions.items()):
            while sub.active and not sub.gifted and sub.next_charge_at <= now:
                # The billing run expires lots past their date, charged or not.
                self.model.expire_due(user, now)
                if self.model.balances.get(user, 0) < sub.billed.price:
                    sub.active = False
                    paused += 1
                    break
                self.model.debit(user, sub.billed.price, now)
                sub.interval, sub.next_interval = sub.billed, None
                sub.months_paid += sub.interval.months
                charged += 1
        assert (answer.body["charged"], answer.body["paused"]) == (charged, paused), answer

    def adopt(self, user: str, found: list[Lot] | None = None) -> list[Lot]:
        """Learn the ids of the user's lots made since the last look: the store's lots,
        oldest first, are the model's (same amount, priority, expiry, creation); returns
        the store's lots (`found`, or read now when the model misses an id)."""
        mine = self.model.lots.get(user, [])
        if found is None:
            if all(lot.id is not None for lot in mine):
                return []
            found = self.stored_lots(user)
        assert len(found) == len(mine), (user, found, mine)
        for lot, seen in zip(mine, found, strict=True):
            shape = (seen.amount, seen.priority, seen.expires_at, seen.created_at)
            assert (lot.amount, lot.priority, lot.expires_at, lot.created_at) == shape
            assert lot.id in (None, seen.id), (lot, seen)
            lot.id = seen.id
        return found

    def stored_lots(self, user: str) -> list[Lot]:
        """Every lot of the user in the store, oldest first (ids break ties: they are
        counted, so in the order the lots were made)."""
        found = self.server.call(self.server.services.lots.of_user(user))
        return sorted(found, key=lambda lot: (lot.created_at, lot.id))

    # What must hold after every step.

    @invariant()
    def every_lot_is_the_models(self) -> None:
        """Each user's lots, spent and expired ones too, are the model's; their open lots
        come in the model's burn order; the balance is what the lots hold, less held."""
        for user in USERS:
            mine = self.model.lots.get(user, [])
            found = self.adopt(user, self.stored_lots(user))
            seen = [stored(lot) for lot in found]
            assert seen == [lot.seen() for lot in mine], (user, seen, mine)
            for lot in mine:
                assert 0 <= lot.held <= lot.remaining <= lot.amount, lot
            if user in self.model.balances:
                free = sum(lot.free for lot in mine)
                assert self.model.balances[user] == free, (user, mine)
            if not mine:
                continue  # no lots in the store either (just checked): none open
            burn_order = sorted((lot for lot in mine if lot.remaining > 0), key=ModelLot.burn_order)
            opened = self.server.call(self.server.services.lots.open_lots(user))
            assert [lot.id for lot in opened] == [lot.id for lot in burn_order], (
                user,
                opened,
                burn_order,
            )

    @invariant()
    def every_balance_is_the_models(self) -> None:
        self.model.steps += 1
        for user, expected in self.model.balances.items():
            answer = self.server.request("GET", f"/api/v1/internal/credits/balance/{user}")
            assert answer.status == 200, answer
            assert answer.body["balance"] == expected, (user, answer.body, expected)

    @invariant()
    def every_accrual_is_the_models(self) -> None:
        """What each user accrued below a credit is the model's."""
        for user in self.model.balances:
            found = self.server.call(self.server.services.credits.existing_balance(user))
            assert found.accrued_milli == self.model.accrued.get(user, 0), (user, found)

    @invariant()
    def every_subscription_is_the_models(self) -> None:
        for user, sub in self.model.subscriptions.items():
            answer = self.server.request("GET", f"/api/v1/internal/sync/status/{user}")
            assert answer.status == 200, answer
            assert (answer.body["active"], answer.body["gifted"]) == (sub.active, sub.gifted)

    @invariant()
    def the_ledger_reconciles(self) -> None:
        report = self.server.call(self.server.services.reconcile.run())
        assert report.ok, report


class CreditsMachine(LotsMachine):
    """The service as its clients see it, against a model of what it must do: the lots
    machine's rules and the rest of the service (rewards, gifts, Cloud Sync, purchases,
    account deletion)."""

    gifts = Bundle("gifts")
    purchases = Bundle("purchases")

    # Rewards from another service: once per user and reference.

    @rule(user=users, amount=amounts, reference=references)
    def reward(self, user: str, amount: int, reference: str) -> None:
        body = {"userId": user, "amount": amount, "reason": "feedback", "referenceId": reference}
        answer = self.server.request("POST", "/api/v1/internal/credits/grant", body)
        assert answer.status == 200, answer
        prior = self.model.rewards.get((user, reference))
        if prior is not None:
            expected = {"ok": True, "alreadyGranted": True, "newBalance": prior[1]}
            assert answer.body == expected | {"transactionId": prior[0]}, answer
            return
        self.model.credit(user, amount, self.now)
        assert answer.body["alreadyGranted"] is False, answer
        assert answer.body["newBalance"] == self.model.balances[user]
        self.model.rewards[(user, reference)] = (
            answer.body["transactionId"],
            self.model.balances[user],
        )

    # Gift codes.

    @rule(target=gifts, creator=users, amount=amounts, personal=st.none() | users)
    def create_gift(self, creator: str, amount: int, personal: str | None) -> Gift | None:
        body: dict[str, Any] = {"totalCredits": amount, "expirationDays": 30}
        if personal is not None:
            body |= {"type": "personalized", "targetEmail": email(personal)}
        answer = self.server.request("POST", "/api/v1/gifts", body, user=creator)
        if self.model.balances.get(creator, 0) - self.expiring_now(creator) < amount:
            assert answer.status == 400, answer  # refused: nothing changed, expiry neither
            return None
        assert answer.status == 201, answer
        self.model.expire_due(creator, self.now)
        paid = [lot for lot, _ in self.model.debit(creator, amount, self.now)]
        last = max(
            paid,
            key=lambda lot: (lot.expires_at is None, lot.expires_at or START, lot.burn_order()),
        )
        assert answer.body["totalCredits"] == amount
        assert answer.body["status"] == "active"
        expires_at = self.server.clock.now() + timedelta(days=30)
        assert instant(answer.body["expiresAt"]) == expires_at
        assert len(answer.body["code"]) <= 10  # what the web app's redeem field holds
        gift = Gift(
            answer.body["id"],
            answer.body["code"],
            creator,
            amount,
            personal,
            expires_at,
            terms=(last.priority, last.expires_at),
        )
        self.model.gifts.append(gift)
        return gift

    @rule(gift=gifts, redeemer=users)
    def redeem_gift(self, gift: Gift | None, redeemer: str) -> None:
        if gift is None:
            return
        typed = f"{gift.code[:5]}-{gift.code[5:]}".lower()  # as people type it
        path = f"/api/v1/gifts/{typed}/redeem"
        answer = self.server.request("POST", path, {"sourceAppId": "chat"}, user=redeemer)
        if gift.target is not None and gift.target != redeemer:
            assert answer.status == 403, answer
            return
        if gift.state != "active":
            assert answer.status == 400, answer
            return
        assert answer.status == 200, answer
        assert answer.body["creditsReceived"] == gift.amount
        gift.state = "depleted"
        self.model.credit(redeemer, gift.amount, self.now)
        assert answer.body["newBalance"] == self.model.balances[redeemer]

    @rule(gift=gifts, by=users)
    def cancel_gift(self, gift: Gift | None, by: str) -> None:
        if gift is None:
            return
        answer = self.server.request("DELETE", f"/api/v1/gifts/{gift.id}", user=by)
        if by != gift.creator:
            assert answer.status == 404, answer  # another user's gift does not exist for them
            return
        if gift.state != "active":
            assert answer.status == 400, answer
            return
        assert answer.status == 200, answer
        assert answer.body["refundedCredits"] == gift.amount
        gift.state = "cancelled"
        self.model.credit(gift.creator, gift.amount, self.now, *gift.terms)

    @rule(user=users)
    def register(self, user: str) -> None:
        """The auth service reports a registration: personalized gifts are redeemed."""
        body = {"userId": user, "email": email(user)}
        answer = self.server.request("POST", "/api/v1/internal/gifts/redeem-pending", body)
        assert answer.status == 200, answer
        mine = [g for g in self.model.gifts if g.target == user and g.state == "active"]
        assert answer.body == {"redeemed": len(mine), "totalCredits": sum(g.amount for g in mine)}
        for gift in mine:
            gift.state = "depleted"
            self.model.credit(user, gift.amount, self.now)

    # Cloud Sync.

    @rule(user=users, interval=intervals)
    def activate_sync(self, user: str, interval: BillingInterval) -> None:
        body = {"interval": interval.value}
        answer = self.server.request("POST", "/api/v1/sync/activate", body, user=user)
        sub = self.model.subscriptions.get(user)
        if sub is not None and (sub.gifted or sub.active):
            assert answer.status == 400, answer
            return
        now = self.server.clock.now()
        if sub is not None and now < sub.next_charge_at:  # resumed inside a paid period
            assert answer.status == 200, answer
            sub.active = True
            sub.next_interval = None if interval == sub.interval else interval
            assert answer.body["amountCharged"] == 0
            assert instant(answer.body["nextChargeAt"]) == sub.next_charge_at
            return
        if self.model.balances.get(user, 0) - self.expiring_now(user) < interval.price:
            assert answer.status == 402, answer  # refused: nothing changed, expiry neither
            return
        assert answer.status == 200, answer
        self.model.expire_due(user, now)
        self.model.debit(user, interval.price, now)
        sub = Subscription(True, interval=interval, anchor=now, months_paid=interval.months)
        self.model.subscriptions[user] = sub
        assert answer.body["amountCharged"] == interval.price
        assert instant(answer.body["nextChargeAt"]) == sub.next_charge_at

    @rule(user=users, interval=intervals)
    def change_sync_interval(self, user: str, interval: BillingInterval) -> None:
        body = {"interval": interval.value}
        answer = self.server.request("POST", "/api/v1/sync/change-interval", body, user=user)
        sub = self.model.subscriptions.get(user)
        if sub is None or sub.gifted or not sub.active:
            assert answer.status == 400, answer
            return
        assert answer.status == 200, answer
        sub.next_interval = None if interval == sub.interval else interval
        # Nothing is charged now; the answer is what the next charge will take.
        assert answer.body["amountCharged"] == interval.price
        assert instant(answer.body["effectiveAt"]) == sub.next_charge_at

    @rule(user=users)
    def deactivate_sync(self, user: str) -> None:
        answer = self.server.request("POST", "/api/v1/sync/deactivate", user=user)
        sub = self.model.subscriptions.get(user)
        if sub is None or sub.gifted or not sub.active:
            assert answer.status == 400, answer
            return
        assert answer.status == 200, answer
        sub.active = False

    @rule(user=users, admin=users)
    def gift_sync(self, user: str, admin: str) -> None:
        path = f"/api/v1/admin/sync/{user}/gift"
        answer = self.server.request("POST", path, user=admin, role="admin")
        assert answer.status == 200, answer
        sub = self.model.subscriptions.setdefault(
            user, Subscription(True, anchor=self.server.clock.now())
        )
        sub.active = sub.gifted = True

    @rule(user=users, admin=users)
    def revoke_sync(self, user: str, admin: str) -> None:
        path = f"/api/v1/admin/sync/{user}/gift"
        answer = self.server.request("DELETE", path, user=admin, role="admin")
        sub = self.model.subscriptions.get(user)
        if sub is None:
            assert answer.status == 404, answer
            return
        if not sub.gifted:
            assert answer.status == 400, answer
            return
        assert answer.status == 200, answer
        sub.active = sub.gifted = False

    # Buying credits: Stripe, confirmed by a signed webhook.

    @rule(target=purchases, user=users, which=st.integers(min_value=0, max_value=2))
    def buy(self, user: str, which: int) -> Purchase:
        packages = self.server.request("GET", "/api/v1/credits/packages", user=user)
        package = packages.body[which % len(packages.body)]
        body = {"packageId": package["id"]}
        answer = self.server.request("POST", "/api/v1/credits/purchase", body, user=user)
        assert answer.status == 200, answer
        intent_id = answer.body["clientSecret"].split("_secret_")[0]
        intent = self.server.stripe.intents[intent_id]
        return Purchase(answer.body["purchaseId"], user, package["credits"], intent)

    @rule(purchase=purchases, twice=st.booleans())
    def pay(self, purchase: Purchase, twice: bool) -> None:
        payload = paid(self.server.stripe, purchase.intent)
        for _ in range(2 if twice else 1):  # Stripe delivers at least once
            answer = self.server.webhook(payload)
            assert answer.status == 200, answer
            assert answer.body == {"received": True}
        if purchase.id in self.model.erased_purchases:
            purchase.paid = True  # credited, if it was not yet, to the buyer's pseudonym
            return
        if not purchase.paid:
            purchase.paid = True
            self.model.credit(purchase.user, purchase.credits, self.now)
            # Completing a purchase settles any debt: that expires lots past their date.
            self.model.expire_due(purchase.user, self.now)
        seen = self.server.request(
            "GET", f"/api/v1/credits/purchase/{purchase.id}", user=purchase.user
        )
        assert seen.status == 200, seen
        assert seen.body["status"] == "completed", seen

    # Account deletion (GDPR art. 17).

    @rule(user=users)
    def delete_user(self, user: str) -> None:
        """The auth service deletes an account: the user's credits are forfeited, their
        gifts cancelled, their reservations gone; the old id starts from nothing."""
        held = self.server.call(self.server.services.users.records(user))
        path = f"/api/v1/internal/credits/balance/{user}"
        answer = self.server.request("DELETE", path)
        assert answer.status == 200, answer
        has_data = held.balance is not None or any(
            (held.purchases, held.gifts_created, held.redemptions, held.subscription)
        )
        assert (answer.body["deletedCount"] > 0) >= has_data, (answer, held)
        again = self.server.request("DELETE", path)
        assert again.body == {"success": True, "deletedCount": 0}, again
        # A personalized gift the user redeemed tells their address: gifts still
        # waiting for it are cancelled too.
        learned = any(g.target == user and g.state == "depleted" for g in self.model.gifts)
        for gift in self.model.gifts:
            if gift.state == "active" and (
                gift.creator == user or (learned and gift.target == user)
            ):
                gift.state = "cancelled"
                self.model.credit(gift.creator, gift.amount, self.now, *gift.terms)
            if gift.creator == user:
                gift.creator = PSEUDONYM
                gift.target = None if gift.target is None else ERASED
            elif gift.target == user and learned:
                gift.target = ERASED  # no address matches any more: nobody may redeem it
        for reservation in self.model.reservations:
            if reservation.user == user:
                reservation.state = ERASED
        self.model.balances.pop(user, None)
        self.model.accrued.pop(user, None)  # forgiven with the account
        self.model.lots.pop(user, None)
        self.model.subscriptions.pop(user, None)
        self.model.keys = {k: v for k, v in self.model.keys.items() if k[0] != user}
        # Rewards are keyed like requests: the old id's references are forgotten too.
        self.model.rewards = {k: v for k, v in self.model.rewards.items() if k[0] != user}
        self.model.erased_purchases |= {p.id for p in held.purchases}
        gone = self.server.request("POST", "/api/v1/internal/credits/use", {
            "userId": user, "amount": 1, "appId": "chat", "description": "after",
        })  # fmt: skip
        assert gone.status == 404, gone


async def empty(server: LiveServer) -> None:
    """Every table of the server's store emptied, between examples."""
    store = server.services.store
    if isinstance(store, MemoryStore):
        async with store.lock:
            store.state = MemoryState()
    elif not isinstance(store, SqlStore):
        raise TypeError(f"no way to empty {store!r}")
    elif store.engine.dialect.name == "postgresql":
        await truncate(store)
    else:  # SQLite has no TRUNCATE
        async with store.engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                await connection.execute(sa.delete(table))


@pytest.fixture(scope="module", params=STORES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The live server on each store in turn, with counted ids."""
    home = tmp_path_factory.mktemp("stateful")
    url = {
        "memory": "memory://",
        "sqlite": f"sqlite+aiosqlite:///{home / 'credits.db'}",
    }.get(request.param) or request.getfixturevalue("pg_url")
    live = LiveServer(url, home, ids=CountingIds())
    yield live
    live.close()


def store_of(server: LiveServer) -> str:
    url = server.settings.database_url
    return (
        "memory"
        if url.startswith("memory:")
        else "sqlite"
        if url.startswith("sqlite")
        else "postgres"
    )


def run(machine: type[LotsMachine], server: LiveServer, examples: int) -> None:
    """Run `machine` against `server`: a fixed set of examples unless asked for random
    ones; no example database (CI keeps nothing between runs)."""
    machine.server = server
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=max(1, round(examples * STORE_SHARE[store_of(server)])),
            stateful_step_count=STEPS,
            derandomize=DERANDOMIZE,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            database=None,
        ),
    )


def test_the_lots_behave_like_the_model(server: LiveServer) -> None:
    run(LotsMachine, server, LOTS_EXAMPLES)


def test_the_server_behaves_like_the_model(server: LiveServer) -> None:
    run(CreditsMachine, server, EXAMPLES)
