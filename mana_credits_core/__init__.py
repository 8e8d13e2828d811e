"""mana-credits core: the prepaid-credits domain and its use cases (standard library only)."""

from .errors import BalanceNotFound as BalanceNotFound
from .errors import Conflict as Conflict
from .errors import CreditsError as CreditsError
from .errors import Forbidden as Forbidden
from .errors import IdempotencyKeyReused as IdempotencyKeyReused
from .errors import InsufficientCredits as InsufficientCredits
from .errors import InvalidInput as InvalidInput
from .errors import NotFound as NotFound
from .errors import ReservationNotFound as ReservationNotFound
from .errors import ReservationNotPending as ReservationNotPending
from .errors import StoreUnavailable as StoreUnavailable
from .errors import Unauthenticated as Unauthenticated
from .ledger import Balance as Balance
from .ledger import LedgerEntry as LedgerEntry
from .ledger import LedgerPage as LedgerPage
from .ledger import TransactionStatus as TransactionStatus
from .ledger import TransactionType as TransactionType
from .ledger import UsageStat as UsageStat
from .ports import Principal as Principal
from .reservations import Reservation as Reservation
from .reservations import ReservationStatus as ReservationStatus
from .services import CreditsService as CreditsService
from .services import Drift as Drift
from .services import LedgerResult as LedgerResult
from .services import ReconcileReport as ReconcileReport
from .services import ReconcileService as ReconcileService
from .services import ReservationsService as ReservationsService
from .services import Services as Services

__all__ = [
    "Balance",
    "BalanceNotFound",
    "Conflict",
    "CreditsError",
    "CreditsService",
    "Drift",
    "Forbidden",
    "IdempotencyKeyReused",
    "InsufficientCredits",
    "InvalidInput",
    "LedgerEntry",
    "LedgerPage",
    "LedgerResult",
    "NotFound",
    "Principal",
    "ReconcileReport",
    "ReconcileService",
    "Reservation",
    "ReservationNotFound",
    "ReservationNotPending",
    "ReservationStatus",
    "ReservationsService",
    "Services",
    "StoreUnavailable",
    "TransactionStatus",
    "TransactionType",
    "Unauthenticated",
    "UsageStat",
]
