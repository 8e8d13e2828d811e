"""The ports of buying credits: packages, purchases, payment customers and events."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Protocol

from ..purchases import Package, Purchase


class PackageRepository(Protocol):
    async def list(self, *, active_only: bool) -> list[Package]:
        """Packages by `sort_order`, then name."""
        ...

    async def get(self, package_id: str) -> Package | None: ...

    async def add(self, package: Package) -> None: ...

    async def update(self, package: Package) -> None: ...

    async def count(self) -> int: ...

    async def ids_starting_with(self, prefix: str, limit: int) -> builtins.list[str]:
        """Ids beginning with `prefix` exactly (case matters, no wildcards), in id
        order, at most `limit` of them; an empty list when none does."""
        ...


class PurchaseRepository(Protocol):
    async def add(self, purchase: Purchase) -> None: ...

    async def get(self, purchase_id: str) -> Purchase | None: ...

    async def by_payment_intent(self, payment_intent_id: str) -> Purchase | None: ...

    async def by_charge(self, charge_id: str) -> Purchase | None: ...

    async def by_checkout_session(self, session_id: str) -> Purchase | None: ...

    async def lock(self, purchase_id: str) -> Purchase | None:
        """The purchase, its row locked until the unit of work ends."""
        ...

    async def list_for_user(self, user_id: str, limit: int) -> list[Purchase]:
        """Newest first."""
        ...

    async def complete(
        self, purchase_id: str, payment_intent_id: str | None, now: datetime
    ) -> Purchase | None:
        """Pending or failed → completed, recording the payment; None if not possible.

        The status guard makes this happen once, whichever event arrives first.
        """
        ...

    async def fail(self, purchase_id: str) -> bool:
        """Pending → failed; a completed purchase is never failed afterwards."""
        ...

    async def link(self, purchase_id: str, payment_intent_id: str, charge_id: str | None) -> None:
        """Record the purchase's PaymentIntent and charge where none is recorded yet."""
        ...

    async def move_clawback(self, purchase_id: str, version: int, clawed_back: int) -> bool:
        """Set `clawed_back` and bump `clawback_version` if it is still `version` (a
        conditional write); False if another move came first."""
        ...

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        """Ids beginning with `prefix` exactly (case matters, no wildcards), in id
        order, at most `limit` of them; an empty list when none does."""
        ...


class CustomerRepository(Protocol):
    async def get(self, user_id: str) -> str | None: ...

    async def add(self, user_id: str, customer_id: str, now: datetime) -> str:
        """Store the user's customer id unless one is stored; returns the stored one."""
        ...


class PaymentEventRepository(Protocol):
    async def record(self, event_id: str, type: str, now: datetime) -> bool:
        """Remember a processed event; False if it was recorded before."""
        ...

    async def seen(self, event_id: str) -> bool:
        """Whether the event was recorded as processed."""
        ...
