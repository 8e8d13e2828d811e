"""The store and its unit of work over the repositories, and the debit applier."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from ..ledger import Debit, DebitOutcome
from .console import ConsoleRepository
from .gifts import GiftRepository
from .ledger import BalanceRepository, LedgerRepository, ReservationRepository, UsageRepository
from .lots import LotRepository
from .prices import PriceRepository
from .purchases import (
    CustomerRepository,
    PackageRepository,
    PaymentEventRepository,
    PurchaseRepository,
)
from .reports import ReportRepository
from .sync import SyncRepository
from .users import UserDataRepository


class UnitOfWork(Protocol):
    """One transaction over the repositories: rolled back on exit unless committed."""

    @property
    def balances(self) -> BalanceRepository: ...

    @property
    def ledger(self) -> LedgerRepository: ...

    @property
    def reservations(self) -> ReservationRepository: ...

    @property
    def lots(self) -> LotRepository: ...

    @property
    def usage(self) -> UsageRepository: ...

    @property
    def prices(self) -> PriceRepository: ...

    @property
    def packages(self) -> PackageRepository: ...

    @property
    def purchases(self) -> PurchaseRepository: ...

    @property
    def customers(self) -> CustomerRepository: ...

    @property
    def payment_events(self) -> PaymentEventRepository: ...

    @property
    def gifts(self) -> GiftRepository: ...

    @property
    def sync(self) -> SyncRepository: ...

    @property
    def reports(self) -> ReportRepository: ...

    @property
    def users(self) -> UserDataRepository: ...

    @property
    def console(self) -> ConsoleRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class Store(Protocol):
    """A store: hands out units of work, and closes its connections when done."""

    def unit_of_work(self) -> UnitOfWork: ...

    def reader(self) -> UnitOfWork:
        """A unit of work for reads only: each read sees committed data, without a
        transaction around them (one round trip per read); never call `commit`."""
        ...

    async def ping(self) -> None:
        """Touch the store; raises `StoreUnavailable` if it cannot be reached."""
        ...

    async def close(self) -> None: ...


class DebitApplier(Protocol):
    """Applies one debit in its own transaction.

    The default runs it in a unit of work; a batching adapter may group debits that
    arrive together into one transaction, as long as each gets its own outcome.
    """

    async def apply(self, debit: Debit) -> DebitOutcome: ...

    async def close(self) -> None:
        """Finish queued debits and release connections (a no-op when none are held)."""
        ...
