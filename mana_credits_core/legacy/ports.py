"""The two sides of the legacy import: the old database it reads, the store it fills."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from ..gifts import GiftCode, GiftRedemption
from ..ledger import LedgerEntry, UsageStat
from ..lots import Allocation, Lot
from ..purchases import Package, Purchase
from ..reservations import Reservation
from ..sync import SyncSubscription
from .records import (
    ImportedBalance,
    LegacyFindings,
    LegacyGift,
    LegacyLayout,
    LegacyReservation,
    LegacySubscription,
    LegacyUser,
    StripeCustomer,
)

SOURCE_TABLES = (
    "balances",
    "transactions",
    "packages",
    "purchases",
    "usage_stats",
    "stripe_customers",
    "sync_subscriptions",
    "reservations",
    "gift_codes",
    "gift_redemptions",
)
"""The old tables, by their names without schema, in the order the import copies them."""


class LegacySource(Protocol):
    """The old service's database, read in one consistent snapshot.

    Every method streams in batches (lists of at most a few thousand rows) so that a
    database of millions of rows is read in bounded memory. Batches come in a stable
    order (stated per method), so two runs over the same data decide the same things.
    """

    async def layout(self) -> LegacyLayout:
        """Check the source is the old layout; raise `NotLegacyLayout` (naming the first
        missing schema, table, column or enum type) if it is not."""
        ...

    async def counts(self) -> dict[str, int]:
        """Rows per old table (`SOURCE_TABLES` names; 0 for a table the layout lacks)."""
        ...

    def users(self) -> AsyncIterator[list[LegacyUser]]:
        """Every user who has a balances row, a transaction or a reservation, by user id."""
        ...

    def entries(self) -> AsyncIterator[list[LedgerEntry]]:
        """Every transaction, field for field, by (created_at, id)."""
        ...

    def packages(self) -> AsyncIterator[list[Package]]:
        """Every package, by id."""
        ...

    def purchases(self) -> AsyncIterator[list[Purchase]]:
        """Every purchase, by id; `package_id` is "" where the old row has none."""
        ...

    def usage(self) -> AsyncIterator[list[UsageStat]]:
        """The old per-use rows summed per user, app and UTC day (credits and count)."""
        ...

    def customers(self) -> AsyncIterator[list[StripeCustomer]]:
        """Every Stripe customer mapping, by user id."""
        ...

    def subscriptions(self) -> AsyncIterator[list[LegacySubscription]]:
        """Every Cloud Sync subscription, by user id."""
        ...

    def reservations(self) -> AsyncIterator[list[LegacyReservation]]:
        """Every reservation, by id; nothing when the layout has no reservations table."""
        ...

    def gifts(self) -> AsyncIterator[list[LegacyGift]]:
        """Every gift code, by id."""
        ...

    def redemptions(self) -> AsyncIterator[list[GiftRedemption]]:
        """Every gift redemption, by id."""
        ...

    async def findings(self) -> LegacyFindings:
        """Double-credited purchases, duplicate Cloud Sync charges, transactions that do
        not chain and gifts redeemed twice."""
        ...


class ImportWriter(Protocol):
    """Writes into this service's store inside the import's one transaction.

    Every `write_*` inserts the rows whose primary key is not in the store yet and
    leaves the others untouched; it returns how many it inserted. Another unique
    constraint refusing a row (an idempotency key or a gift code taken by other data)
    raises `ImportRefused`.
    """

    async def balances(self) -> dict[str, ImportedBalance]:
        """Every balances row the store holds now, by user id."""
        ...

    async def entry_counts(self) -> dict[str, int]:
        """Ledger entries per user the store holds now (users with none are absent)."""
        ...

    async def write_balances(self, rows: Sequence[ImportedBalance]) -> int: ...

    async def write_entries(self, rows: Sequence[LedgerEntry]) -> int: ...

    async def write_packages(self, rows: Sequence[Package]) -> int: ...

    async def write_purchases(self, rows: Sequence[Purchase]) -> int: ...

    async def write_usage(self, rows: Sequence[UsageStat]) -> int:
        """Per-day usage rows; the key is (user id, app id, day)."""
        ...

    async def write_customers(self, rows: Sequence[StripeCustomer]) -> int: ...

    async def write_subscriptions(self, rows: Sequence[SyncSubscription]) -> int: ...

    async def write_reservations(self, rows: Sequence[Reservation]) -> int: ...

    async def write_gifts(self, rows: Sequence[GiftCode]) -> int: ...

    async def write_redemptions(self, rows: Sequence[GiftRedemption]) -> int: ...

    async def write_lots(self, rows: Sequence[Lot]) -> int:
        """Credit lots (the opening lots); the key is the lot id."""
        ...

    async def write_holds(self, rows: Sequence[tuple[str, Allocation]]) -> int:
        """Hold allocations, (reservation id, lot and credits held from it)."""
        ...


class ImportTarget(Protocol):
    """This service's store as the import's destination."""

    def transaction(self, *, commit: bool) -> AbstractAsyncContextManager[ImportWriter]:
        """One transaction for the whole import, exclusive against another import: on a
        normal exit it commits if `commit`, else rolls back (a dry run); on an error or
        a kill it leaves nothing."""
        ...
