"""The in-memory store: same rules and errors as SQL, one lock for atomicity.

`MemoryState` holds the tables; each repository lives in its own `memory_*` module.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Self

from mana_credits_core.console import AuditEntry, SignInLink
from mana_credits_core.gifts import GiftCode, GiftRedemption
from mana_credits_core.ledger import Balance, LedgerEntry, OperationUsage, UsageStat
from mana_credits_core.lots import Allocation, Lot
from mana_credits_core.pricing import Price, PriceChange, seeded
from mana_credits_core.purchases import Package, Purchase
from mana_credits_core.reservations import Reservation
from mana_credits_core.sync import SyncSubscription

from .memory_balances import MemoryBalances
from .memory_console import MemoryConsole
from .memory_entries import MemoryLedger
from .memory_gifts import MemoryGifts
from .memory_lots import MemoryLots
from .memory_prices import MemoryPrices
from .memory_purchases import MemoryCustomers, MemoryPackages, MemoryPaymentEvents, MemoryPurchases
from .memory_reports import MemoryReports
from .memory_reservations import MemoryReservations
from .memory_sync import MemorySync
from .memory_undo import Undo
from .memory_usage import MemoryUsage
from .memory_users import MemoryUserData


class MemoryState:
    """The tables. Only a unit of work holding the store's lock touches them."""

    def __init__(self) -> None:
        self.balances: dict[str, Balance] = {}
        self.emails: dict[str, str] = {}  # the e-mail column of the balances, by user id
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
        self.lots: dict[str, Lot] = {}
        self.lots_by_user: defaultdict[str, list[str]] = defaultdict(list)
        self.allocations: dict[str, list[Allocation]] = {}  # by debit entry id
        self.holds: dict[str, list[Allocation]] = {}  # by pending reservation id
        self.notified: dict[str, datetime] = {}  # lot id -> when its expiry was announced
        self.links: dict[str, SignInLink] = {}  # console sign-in links by token hash
        self.audit: dict[str, AuditEntry] = {}  # the console's audit log by entry id
        # A new store starts with the seeded price list, as a migrated database does.
        self.prices: dict[str, Price] = {p.operation: p for p in seeded(datetime.now(UTC))}
        self.price_changes: list[PriceChange] = []  # oldest first
        self.operation_usage: dict[tuple[str, str, date], OperationUsage] = {}


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
        self._reservations = MemoryReservations(state, self._undo)
        self._lots = MemoryLots(state, self._undo)
        self._usage = MemoryUsage(state)
        self._packages = MemoryPackages(state, self._undo)
        self._purchases = MemoryPurchases(state, self._undo)
        self._customers = MemoryCustomers(state, self._undo)
        self._payment_events = MemoryPaymentEvents(state, self._undo)
        self._gifts = MemoryGifts(state, self._undo)
        self._sync = MemorySync(state, self._undo)
        self._reports = MemoryReports(state)
        self._users = MemoryUserData(state, self._undo)
        self._console = MemoryConsole(state, self._undo)
        self._prices = MemoryPrices(state, self._undo)

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
    def lots(self) -> MemoryLots:
        return self._lots

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

    @property
    def console(self) -> MemoryConsole:
        return self._console

    @property
    def prices(self) -> MemoryPrices:
        return self._prices

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
