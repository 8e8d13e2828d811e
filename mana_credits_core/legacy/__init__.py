"""The legacy import: bringing the old service's database across, exactly."""

from .errors import ImportRefused as ImportRefused
from .errors import NotLegacyLayout as NotLegacyLayout
from .errors import TargetHoldsOtherData as TargetHoldsOtherData
from .ports import SOURCE_TABLES as SOURCE_TABLES
from .ports import ImportTarget as ImportTarget
from .ports import ImportWriter as ImportWriter
from .ports import LegacySource as LegacySource
from .records import BrokenChain as BrokenChain
from .records import DoubleCredit as DoubleCredit
from .records import DuplicateCharge as DuplicateCharge
from .records import DuplicateRedemption as DuplicateRedemption
from .records import ImportedBalance as ImportedBalance
from .records import LegacyFindings as LegacyFindings
from .records import LegacyGift as LegacyGift
from .records import LegacyLayout as LegacyLayout
from .records import LegacyReservation as LegacyReservation
from .records import LegacySubscription as LegacySubscription
from .records import LegacyUser as LegacyUser
from .records import StripeCustomer as StripeCustomer
from .records import UnbackedGift as UnbackedGift

__all__ = [
    "SOURCE_TABLES",
    "BrokenChain",
    "DoubleCredit",
    "DuplicateCharge",
    "DuplicateRedemption",
    "ImportRefused",
    "ImportTarget",
    "ImportWriter",
    "ImportedBalance",
    "LegacyFindings",
    "LegacyGift",
    "LegacyLayout",
    "LegacyReservation",
    "LegacySource",
    "LegacySubscription",
    "LegacyUser",
    "NotLegacyLayout",
    "StripeCustomer",
    "TargetHoldsOtherData",
    "UnbackedGift",
]
