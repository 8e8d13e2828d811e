"""The in-memory store: same rules and errors as SQL, one lock for atomicity."""

from __future__ import annotations

import asyncio
import builtins
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import date, datetime
from types import TracebackType
from typing import Any, Self

from mana_credits_core.errors import BalanceNotFound, GiftCodeTaken
from mana_credits_core.gifts import (
    GiftCode,
    GiftRedemption,
    GiftStatus,
    GiftType,
    ReceivedGift,
    RedemptionStatus,
    email_key,
)
from mana_credits_core.ledger import (
    Applied,
    Balance,
    Credit,
    CreditOutcome,
    Debit,
    DebitOutcome,
    LedgerEntry,
    NoBalance,
    Refused,
    Replayed,
    TransactionStatus,
    UsageStat,
    completed_entry,
    totals_of,
)
from mana_credits_core.ports import LedgerTotals
from mana_credits_core.purchases import Package, Purchase
from mana_credits_core.reservations import (
    CommitHold,
    Held,
    Hold,
    ReleaseHold,
    Reservation,
    ReservationStatus,
    committed_entry,
    pending_reservation,
)
from mana_credits_core.sync import BillingInterval, SyncSubscription

from .memory_counts import MemoryLedgerCounts
from .memory_lookups import MemoryGiftLookups, MemoryPackageLookups
from .memory_purchases import MemoryPaymentEvents, MemoryPurchases
from .memory_reports import MemoryReports
from .memory_users import MemoryUserData

Undo = Callable[[], None]


class MemoryState:
    """The tables. Only a unit of work holding the store's lock touches them."""

    def __init__(self) -> None:
        self.balances: dict[str, Balance] = {}
        self.entries: dict[str, LedgerEntry] = {}
        self.entries_by_user: defaultdict[str, list[str]] = defaultdict(list)
        self.idempotency: dict[tuple[str, str], str] = {}
        self.reservations: dict[str, Reservation] = {}
        self.usage: dict[tuple[str, str, date], UsageStat] = {}
        self.packages: dict[str, Package] = {}
        self.purchases: dict[str, Purchase] = {}
        self.customers: dict[str, str] = {}
        self.payment_events: dict[str, str] = {}
        self.gifts: dict[str, GiftCode] = {}
        self.redemptions: dict[str, GiftRedemption] = {}
        self.sync: dict[str, SyncSubscription] = {}


class MemoryStore:
    """A `Store` in process memory, for tests, embedding and the model-based test.

    Units of work run one at a time under an `asyncio.Lock`, so each is serialisable;
    every write records its inverse so that an exit without commit rolls back.
    """

    def __init__(self) -> None:
        self.state = MemoryState()
        self.lock = asyncio.Lock()

    def unit_of_work(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    def reader(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class MemoryUnitOfWork:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._undo: list[Undo] = []
        state = store.state
        self._balances = MemoryBalances(state, self._undo)
        self._ledger = MemoryLedger(state)
        self._reservations = MemoryReservations(state, self._undo, self._balances)
        self._usage = MemoryUsage(state)
        self._packages = MemoryPackages(state, self._undo)
        self._purchases = MemoryPurchases(state, self._undo)
        self._customers = MemoryCustomers(state, self._undo)
        self._payment_events = MemoryPaymentEvents(state, self._undo)
        self._gifts = MemoryGifts(state, self._undo)
        self._sync = MemorySync(state, self._undo)
        self._reports = MemoryReports(state)
        self._users = MemoryUserData(state, self._undo)

    @property
    def balances(self) -> MemoryBalances:
        return self._balances

    @property
    def ledger(self) -> MemoryLedger:
        return self._ledger

    @property
    def reservations(self) -> MemoryReservations:
        return self._reservations

    @property
    def usage(self) -> MemoryUsage:
        return self._usage

    @property
    def packages(self) -> MemoryPackages:
        return self._packages

    @property
    def purchases(self) -> MemoryPurchases:
        return self._purchases

    @property
    def customers(self) -> MemoryCustomers:
        return self._customers

    @property
    def payment_events(self) -> MemoryPaymentEvents:
        return self._payment_events

    @property
    def gifts(self) -> MemoryGifts:
        return self._gifts

    @property
    def sync(self) -> MemorySync:
        return self._sync

    @property
    def reports(self) -> MemoryReports:
        return self._reports

    @property
    def users(self) -> MemoryUserData:
        return self._users

    async def __aenter__(self) -> Self:
        await self._store.lock.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.rollback()
        finally:
            self._store.lock.release()

    async def commit(self) -> None:
        self._undo.clear()

    async def rollback(self) -> None:
        while self._undo:
            self._undo.pop()()


def _set(table: dict[Any, Any], key: Any, value: Any, undo: list[Undo]) -> None:
    if key in table:
        old = table[key]
        undo.append(lambda: table.__setitem__(key, old))
    else:
        undo.append(lambda: table.pop(key, None))
    table[key] = value


class MemoryBalances:
    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    async def get(self, user_id: str) -> Balance | None:
        return self._s.balances.get(user_id)

    async def ensure(self, user_id: str, now: datetime) -> Balance:
        found = self._s.balances.get(user_id)
        if found is None:
            found = Balance.zero(user_id)
            _set(self._s.balances, user_id, found, self._undo)
        return found

    def set(self, balance: Balance) -> None:
        _set(self._s.balances, balance.user_id, balance, self._undo)

    def _replay(self, user_id: str, key: str | None) -> LedgerEntry | None:
        if key is None:
            return None
        entry_id = self._s.idempotency.get((user_id, key))
        return None if entry_id is None else self._s.entries[entry_id]

    async def debit(self, debit: Debit) -> DebitOutcome:
        original = self._replay(debit.user_id, debit.idempotency_key)
        if original is not None:
            return Replayed(original)
        current = self._s.balances.get(debit.user_id)
        if current is None:
            return NoBalance()
        if current.balance < debit.amount:
            return Refused(current.balance)
        after = replace(
            current,
            balance=current.balance - debit.amount,
            total_spent=current.total_spent + debit.amount,
        )
        entry = completed_entry(debit, -debit.amount, current.balance, after.balance)
        self.set(after)
        self.add_entry(entry)
        if debit.counts_as_usage:
            self.count_usage(debit.user_id, debit.app_id, debit.usage_day, debit.amount)
        return Applied(entry, after)

    async def credit(self, credit: Credit) -> CreditOutcome:
        original = self._replay(credit.user_id, credit.idempotency_key)
        if original is not None:
            return Replayed(original)
        current = await self.ensure(credit.user_id, credit.now)
        after = replace(
            current,
            balance=current.balance + credit.amount,
            total_earned=current.total_earned + credit.amount,
        )
        entry = completed_entry(credit, credit.amount, current.balance, after.balance)
        self.set(after)
        self.add_entry(entry)
        return Applied(entry, after)

    async def claw_back(self, debit: Debit) -> tuple[LedgerEntry | None, int]:
        current = self._existing(debit.user_id)
        taken = min(current.balance, debit.amount)
        shortfall = debit.amount - taken
        return self._take(current, debit, taken, shortfall), shortfall

    async def collect_debt(self, debit: Debit) -> LedgerEntry | None:
        current = self._existing(debit.user_id)
        taken = min(current.balance, current.debt)
        return self._take(current, debit, taken, -taken)

    async def reinstate(self, credit: Credit) -> tuple[LedgerEntry | None, int]:
        current = self._existing(credit.user_id)
        paid = min(current.debt, credit.amount)
        given = credit.amount - paid
        after = replace(
            current,
            balance=current.balance + given,
            total_earned=current.total_earned + given,
            debt=current.debt - paid,
        )
        self.set(after)
        if given == 0:
            return None, paid
        entry = completed_entry(credit, given, current.balance, after.balance)
        self.add_entry(entry)
        return entry, paid

    def _existing(self, user_id: str) -> Balance:
        found = self._s.balances.get(user_id)
        if found is None:
            raise BalanceNotFound()
        return found

    def _take(
        self, current: Balance, debit: Debit, taken: int, debt_change: int
    ) -> LedgerEntry | None:
        self.set(
            replace(
                current,
                balance=current.balance - taken,
                total_spent=current.total_spent + taken,
                debt=current.debt + debt_change,
            )
        )
        if taken == 0:
            return None
        entry = completed_entry(debit, -taken, current.balance, current.balance - taken)
        self.add_entry(entry)
        return entry

    def add_entry(self, entry: LedgerEntry) -> None:
        s = self._s
        if entry.id in s.entries:
            raise RuntimeError(f"duplicate ledger entry id {entry.id}")
        _set(s.entries, entry.id, entry, self._undo)
        ids = s.entries_by_user[entry.user_id]
        ids.append(entry.id)
        self._undo.append(lambda: ids.remove(entry.id))
        if entry.idempotency_key is not None:
            _set(s.idempotency, (entry.user_id, entry.idempotency_key), entry.id, self._undo)

    def count_usage(self, user_id: str, app_id: str, day: date, amount: int) -> None:
        key = (user_id, app_id, day)
        old = self._s.usage.get(key) or UsageStat(user_id, app_id, day, 0, 0)
        new = replace(old, credits_used=old.credits_used + amount, operations=old.operations + 1)
        _set(self._s.usage, key, new, self._undo)

    async def iterate(self, batch_size: int = 1000) -> AsyncIterator[Balance]:
        for user_id in sorted(self._s.balances):
            yield self._s.balances[user_id]


class MemoryLedger(MemoryLedgerCounts):
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    async def get(self, entry_id: str) -> LedgerEntry | None:
        return self._s.entries.get(entry_id)

    async def by_idempotency_key(self, user_id: str, key: str) -> LedgerEntry | None:
        entry_id = self._s.idempotency.get((user_id, key))
        return None if entry_id is None else self._s.entries[entry_id]

    async def list(
        self,
        user_id: str,
        *,
        limit: int,
        offset: int = 0,
        before: tuple[datetime, str] | None = None,
    ) -> list[LedgerEntry]:
        entries = [self._s.entries[i] for i in self._s.entries_by_user.get(user_id, [])]
        entries.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        if before is not None:
            entries = [e for e in entries if (e.created_at, e.id) < before]
        return entries[offset : offset + limit]

    async def page_forward(
        self,
        *,
        limit: int,
        after: tuple[datetime, str] | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
    ) -> builtins.list[LedgerEntry]:
        found = [
            e
            for e in self._s.entries.values()
            if (user_id is None or e.user_id == user_id)
            and (since is None or e.created_at >= since)
            and (after is None or (e.created_at, e.id) > after)
        ]
        found.sort(key=lambda e: (e.created_at, e.id))
        return found[:limit]

    async def totals(self) -> Mapping[str, LedgerTotals]:
        sums: dict[str, LedgerTotals] = {}
        for e in self._s.entries.values():
            if e.status != TransactionStatus.COMPLETED:
                continue
            t = sums.get(e.user_id, LedgerTotals())
            net, earned, spent = totals_of(e)
            sums[e.user_id] = LedgerTotals(t.net + net, t.earned + earned, t.spent + spent)
        return sums


class MemoryReservations:
    def __init__(self, state: MemoryState, undo: list[Undo], balances: MemoryBalances) -> None:
        self._s = state
        self._undo = undo
        self._balances = balances

    async def get(self, reservation_id: str) -> Reservation | None:
        return self._s.reservations.get(reservation_id)

    async def hold(self, hold: Hold) -> Held | None:
        current = self._s.balances.get(hold.user_id)
        if current is None:
            raise BalanceNotFound()
        if current.balance < hold.amount:
            return None
        after = replace(current, balance=current.balance - hold.amount)
        reservation = pending_reservation(hold)
        self._balances.set(after)
        _set(self._s.reservations, reservation.id, reservation, self._undo)
        return Held(reservation, after.balance)

    def _resolve(
        self, reservation_id: str, status: ReservationStatus, now: datetime, entry_id: str | None
    ) -> Reservation | None:
        found = self._s.reservations.get(reservation_id)
        if found is None or found.status != ReservationStatus.PENDING:
            return None
        done = replace(found, status=status, resolved_at=now, transaction_id=entry_id)
        _set(self._s.reservations, reservation_id, done, self._undo)
        return done

    async def commit(self, commit: CommitHold) -> tuple[Reservation, LedgerEntry] | None:
        done = self._resolve(
            commit.reservation_id, ReservationStatus.COMMITTED, commit.now, commit.entry_id
        )
        if done is None:
            return None
        current = self._s.balances[done.user_id]
        after = replace(current, total_spent=current.total_spent + done.amount)
        entry = committed_entry(done, commit, current.balance)
        self._balances.set(after)
        self._balances.add_entry(entry)
        self._balances.count_usage(done.user_id, done.app_id, commit.now.date(), done.amount)
        return done, entry

    async def release(self, release: ReleaseHold) -> tuple[Reservation, Balance] | None:
        done = self._resolve(release.reservation_id, release.status, release.now, None)
        if done is None:
            return None
        current = self._s.balances[done.user_id]
        after = replace(current, balance=current.balance + done.amount)
        self._balances.set(after)
        return done, after

    async def expired(self, older_than: datetime, limit: int) -> list[str]:
        pending = [
            r
            for r in self._s.reservations.values()
            if r.status == ReservationStatus.PENDING and r.created_at < older_than
        ]
        pending.sort(key=lambda r: r.created_at)
        return [r.id for r in pending[:limit]]

    async def held_by_user(self) -> Mapping[str, int]:
        held: dict[str, int] = defaultdict(int)
        for r in self._s.reservations.values():
            if r.status == ReservationStatus.PENDING:
                held[r.user_id] += r.amount
        return dict(held)


class MemoryUsage:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    async def for_user(self, user_id: str, since: datetime | None = None) -> list[UsageStat]:
        rows = [u for u in self._s.usage.values() if u.user_id == user_id]
        if since is not None:
            rows = [u for u in rows if u.day >= since.date()]
        return sorted(rows, key=lambda u: (u.day, u.app_id))

    async def by_app_and_day(self, since: date, app_id: str | None = None) -> list[UsageStat]:
        sums: dict[tuple[date, str], tuple[int, int]] = {}
        for u in self._s.usage.values():
            if u.day >= since and (app_id is None or u.app_id == app_id):
                credits, ops = sums.get((u.day, u.app_id), (0, 0))
                sums[(u.day, u.app_id)] = (credits + u.credits_used, ops + u.operations)
        return [
            UsageStat("*", app, day, credits, ops)
            for (day, app), (credits, ops) in sorted(sums.items())
        ]


class MemoryPackages(MemoryPackageLookups):
    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    async def list(self, *, active_only: bool) -> list[Package]:
        found = [p for p in self._s.packages.values() if p.active or not active_only]
        return sorted(found, key=lambda p: (p.sort_order, p.name, p.id))

    async def get(self, package_id: str) -> Package | None:
        return self._s.packages.get(package_id)

    async def add(self, package: Package) -> None:
        _set(self._s.packages, package.id, package, self._undo)

    async def update(self, package: Package) -> None:
        if package.id in self._s.packages:
            _set(self._s.packages, package.id, package, self._undo)

    async def count(self) -> int:
        return len(self._s.packages)


class MemoryCustomers:
    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    async def get(self, user_id: str) -> str | None:
        return self._s.customers.get(user_id)

    async def add(self, user_id: str, customer_id: str, now: datetime) -> str:
        if user_id not in self._s.customers:
            _set(self._s.customers, user_id, customer_id, self._undo)
        return self._s.customers[user_id]


class MemoryGifts(MemoryGiftLookups):
    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    async def add(self, gift: GiftCode) -> None:
        if any(g.code == gift.code for g in self._s.gifts.values()):
            raise GiftCodeTaken()
        _set(self._s.gifts, gift.id, gift, self._undo)

    async def get(self, gift_id: str) -> GiftCode | None:
        return self._s.gifts.get(gift_id)

    async def by_code(self, code: str) -> GiftCode | None:
        return next((g for g in self._s.gifts.values() if g.code == code), None)

    async def recent(self, limit: int, status: GiftStatus | None = None) -> list[GiftCode]:
        found = [g for g in self._s.gifts.values() if status is None or g.status == status]
        found.sort(key=lambda g: (g.created_at, g.id), reverse=True)
        return found[:limit]

    async def created_by(self, user_id: str, limit: int) -> list[GiftCode]:
        mine = [g for g in self._s.gifts.values() if g.creator_id == user_id]
        mine.sort(key=lambda g: (g.created_at, g.id), reverse=True)
        return mine[:limit]

    async def transition(
        self,
        gift_id: str,
        to: GiftStatus,
        now: datetime,
        *,
        creator_id: str | None = None,
        unexpired: bool = False,
        expired: bool = False,
    ) -> GiftCode | None:
        g = self._s.gifts.get(gift_id)
        if (
            g is None
            or g.status != GiftStatus.ACTIVE
            or (creator_id is not None and g.creator_id != creator_id)
            or (unexpired and g.expires_at <= now)
            or (expired and g.expires_at > now)
        ):
            return None
        redeemed = 1 if to == GiftStatus.DEPLETED else g.redeemed
        moved = replace(g, status=to, updated_at=now, redeemed=redeemed)
        _set(self._s.gifts, gift_id, moved, self._undo)
        return moved

    async def due_for_expiry(self, now: datetime, limit: int) -> list[str]:
        due = [
            g
            for g in self._s.gifts.values()
            if g.status == GiftStatus.ACTIVE and g.expires_at <= now
        ]
        due.sort(key=lambda g: g.expires_at)
        return [g.id for g in due[:limit]]

    async def pending_for_email(self, email_key_: str, now: datetime) -> list[GiftCode]:
        found = [
            g
            for g in self._s.gifts.values()
            if g.status == GiftStatus.ACTIVE
            and g.type == GiftType.PERSONALIZED
            and g.target_email is not None
            and email_key(g.target_email) == email_key_
            and g.expires_at > now
        ]
        return sorted(found, key=lambda g: (g.created_at, g.id))

    async def add_redemption(self, redemption: GiftRedemption) -> None:
        if redemption.status == RedemptionStatus.SUCCESS and any(
            r.gift_code_id == redemption.gift_code_id and r.status == RedemptionStatus.SUCCESS
            for r in self._s.redemptions.values()
        ):
            raise ValueError("a gift has one successful redemption")  # the SQL unique index
        _set(self._s.redemptions, redemption.id, redemption, self._undo)

    async def received_by(self, user_id: str, limit: int) -> list[ReceivedGift]:
        mine = [
            r
            for r in self._s.redemptions.values()
            if r.redeemer_user_id == user_id and r.status == RedemptionStatus.SUCCESS
        ]
        mine.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        found = []
        for r in mine:
            gift = self._s.gifts.get(r.gift_code_id)
            if gift is not None:  # as the SQL join: a redemption without its gift is not listed
                found.append(ReceivedGift(r, gift.code, gift.message, gift.creator_name))
        return found[:limit]

    async def unbacked(self) -> list[tuple[str, int, int | None]]:
        problems: list[tuple[str, int, int | None]] = []
        for g in self._s.gifts.values():
            if g.status != GiftStatus.ACTIVE:
                continue
            entry = self._s.entries.get(g.reservation_transaction_id or "")
            held = None if entry is None else -entry.amount
            if held != g.total_credits:
                problems.append((g.id, g.total_credits, held))
        return problems


class MemorySync:
    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    async def get(self, user_id: str, *, lock: bool = False) -> SyncSubscription | None:
        return self._s.sync.get(user_id)  # the store's lock already serialises

    async def ensure(self, user_id: str, now: datetime) -> None:
        if user_id not in self._s.sync:
            fresh = SyncSubscription(
                user_id=user_id,
                active=False,
                interval=BillingInterval.MONTHLY,
                next_interval=None,
                anchor_at=now,
                months_paid=0,
                next_charge_at=None,
                paused_at=None,
                is_gifted=False,
                gifted_by=None,
                gifted_at=None,
                created_at=now,
                updated_at=now,
            )
            _set(self._s.sync, user_id, fresh, self._undo)

    async def save(self, sub: SyncSubscription) -> None:
        if sub.user_id in self._s.sync:
            _set(self._s.sync, sub.user_id, sub, self._undo)

    def _due(self, now: datetime) -> list[SyncSubscription]:
        due = [
            sub
            for sub in self._s.sync.values()
            if sub.active
            and not sub.is_gifted
            and sub.next_charge_at is not None
            and sub.next_charge_at <= now
        ]
        return sorted(due, key=lambda sub: (sub.next_charge_at or now, sub.user_id))

    async def due(self, now: datetime, limit: int) -> list[SyncSubscription]:
        return self._due(now)[:limit]

    async def count_due(self, now: datetime) -> int:
        return len(self._due(now))

    async def charge_due_batch(self, now: datetime, limit: int, app_id: str) -> None:
        return None  # row by row through the core is fast enough in memory
