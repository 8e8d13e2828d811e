"""The ports: what the core needs from the outside world, as Protocols.

One module per concept: the store and its unit of work (`store`), the repositories it
hands out (`ledger`, `lots`, `purchases`, `gifts`, `sync`, `reports`, `users`), and the services
outside the store (`providers`). Callers import every port from this package.
"""

from .console import ConsoleRepository as ConsoleRepository
from .gifts import GiftRepository as GiftRepository
from .ledger import BalanceRepository as BalanceRepository
from .ledger import LedgerRepository as LedgerRepository
from .ledger import LedgerTotals as LedgerTotals
from .ledger import ReservationRepository as ReservationRepository
from .ledger import UsageRepository as UsageRepository
from .lots import Expiring as Expiring
from .lots import LotDrift as LotDrift
from .lots import LotRepository as LotRepository
from .lots import LotTotals as LotTotals
from .prices import PriceRepository as PriceRepository
from .providers import Clock as Clock
from .providers import CodeGenerator as CodeGenerator
from .providers import IdentityVerifier as IdentityVerifier
from .providers import IdGenerator as IdGenerator
from .providers import Notifier as Notifier
from .providers import PaymentGateway as PaymentGateway
from .providers import Principal as Principal
from .purchases import CustomerRepository as CustomerRepository
from .purchases import PackageRepository as PackageRepository
from .purchases import PaymentEventRepository as PaymentEventRepository
from .purchases import PurchaseRepository as PurchaseRepository
from .reports import ReportRepository as ReportRepository
from .reports import StoreTotals as StoreTotals
from .store import DebitApplier as DebitApplier
from .store import Store as Store
from .store import UnitOfWork as UnitOfWork
from .sync import SyncRepository as SyncRepository
from .users import Erasure as Erasure
from .users import UserDataRepository as UserDataRepository

__all__ = [
    "BalanceRepository",
    "Clock",
    "CodeGenerator",
    "ConsoleRepository",
    "CustomerRepository",
    "DebitApplier",
    "Erasure",
    "Expiring",
    "GiftRepository",
    "IdGenerator",
    "IdentityVerifier",
    "LedgerRepository",
    "LedgerTotals",
    "LotDrift",
    "LotRepository",
    "LotTotals",
    "Notifier",
    "PackageRepository",
    "PaymentEventRepository",
    "PaymentGateway",
    "PriceRepository",
    "Principal",
    "PurchaseRepository",
    "ReportRepository",
    "ReservationRepository",
    "Store",
    "StoreTotals",
    "SyncRepository",
    "UnitOfWork",
    "UsageRepository",
    "UserDataRepository",
]
