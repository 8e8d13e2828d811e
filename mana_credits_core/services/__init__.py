"""The use cases: the library's public API."""

from __future__ import annotations

from dataclasses import dataclass

from ..events import Events
from ..ports import Notifier, PaymentGateway, Store
from .console import ConsoleService as ConsoleService
from .console_catalogue import ConsoleCatalogue as ConsoleCatalogue
from .credits import CreditsService as CreditsService
from .credits import LedgerResult as LedgerResult
from .emails import UserEmails as UserEmails
from .gifts import GiftsService as GiftsService
from .lots import LotsService as LotsService
from .overview import Overview as Overview
from .overview import OverviewService as OverviewService
from .prices import PriceNotFound as PriceNotFound
from .prices import PricesService as PricesService
from .purchases import PurchasesService as PurchasesService
from .purchases import StartedPurchase as StartedPurchase
from .reconcile import Drift as Drift
from .reconcile import ReconcileReport as ReconcileReport
from .reconcile import ReconcileService as ReconcileService
from .reconcile_watch import ReconcileStatus as ReconcileStatus
from .reconcile_watch import ReconcileWatch as ReconcileWatch
from .reservations import ReservationsService as ReservationsService
from .sync import SyncService as SyncService
from .users import LotRecord as LotRecord
from .users import UserDeleted as UserDeleted
from .users import UserRecords as UserRecords
from .users import UsersService as UsersService


@dataclass(frozen=True, slots=True)
class Services:
    """Every use case, wired to one set of adapters by the composition root."""

    store: Store
    credits: CreditsService
    reservations: ReservationsService
    purchases: PurchasesService
    gifts: GiftsService
    sync: SyncService
    reconcile: ReconcileService
    users: UsersService  # a person's data: export and account deletion
    lots: LotsService  # credit lots: the expiry sweep, a user's lots
    reconcile_watch: ReconcileWatch  # this process's last reconcile run
    overview: OverviewService  # the operator overview's figures
    payments: PaymentGateway
    notifier: Notifier
    console: ConsoleService  # the operator console: sign-in links, audited changes
    catalogue: ConsoleCatalogue  # the console's audited package changes
    emails: UserEmails  # each user's e-mail address from their tokens, for the console
    events: Events  # what the use cases above did, for observers such as metrics
    prices: PricesService  # the price list: operations' prices and their changes

    async def close(self) -> None:
        """Release what the services hold themselves (the debit writers' connections);
        the store, gateway and notifier are closed by whoever opened them."""
        await self.credits.close()


__all__ = [
    "ConsoleCatalogue",
    "ConsoleService",
    "CreditsService",
    "Drift",
    "GiftsService",
    "LedgerResult",
    "LotRecord",
    "LotsService",
    "Overview",
    "OverviewService",
    "PriceNotFound",
    "PricesService",
    "PurchasesService",
    "ReconcileReport",
    "ReconcileService",
    "ReconcileStatus",
    "ReconcileWatch",
    "ReservationsService",
    "Services",
    "StartedPurchase",
    "SyncService",
    "UserDeleted",
    "UserEmails",
    "UserRecords",
    "UsersService",
]
