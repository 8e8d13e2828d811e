"""The in-memory store's packages, purchases, payment customers and processed payment
events."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from mana_credits_core.purchases import Package, Purchase, PurchaseStatus

from .memory_lookups import MemoryPackageLookups, MemoryPurchaseLookups
from .memory_undo import Undo, undoable_set

if TYPE_CHECKING:
    from .memory import MemoryState


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
        undoable_set(self._s.packages, package.id, package, self._undo)

    async def update(self, package: Package) -> None:
        if package.id in self._s.packages:
            undoable_set(self._s.packages, package.id, package, self._undo)

    async def count(self) -> int:
        return len(self._s.packages)


class MemoryPurchases(MemoryPurchaseLookups):
    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    def _unique(self, purchase: Purchase, skip: str | None = None) -> None:
        for other in self._s.purchases.values():  # the SQL unique constraints
            if other.id == skip:
                continue
            for ref in (
                "stripe_payment_intent_id",
                "stripe_checkout_session_id",
                "stripe_charge_id",
            ):
                mine = getattr(purchase, ref)
                if mine is not None and getattr(other, ref) == mine:
                    raise ValueError(f"duplicate {ref}")

    async def add(self, purchase: Purchase) -> None:
        self._unique(purchase)
        undoable_set(self._s.purchases, purchase.id, purchase, self._undo)

    async def get(self, purchase_id: str) -> Purchase | None:
        return self._s.purchases.get(purchase_id)

    def _by(self, ref: str, value: str) -> Purchase | None:
        for purchase in self._s.purchases.values():
            if getattr(purchase, ref) == value:
                return purchase
        return None

    async def by_payment_intent(self, payment_intent_id: str) -> Purchase | None:
        return self._by("stripe_payment_intent_id", payment_intent_id)

    async def by_charge(self, charge_id: str) -> Purchase | None:
        return self._by("stripe_charge_id", charge_id)

    async def by_checkout_session(self, session_id: str) -> Purchase | None:
        return self._by("stripe_checkout_session_id", session_id)

    async def lock(self, purchase_id: str) -> Purchase | None:
        return self._s.purchases.get(purchase_id)  # units of work run one at a time

    async def list_for_user(self, user_id: str, limit: int) -> list[Purchase]:
        mine = [p for p in self._s.purchases.values() if p.user_id == user_id]
        mine.sort(key=lambda p: (p.created_at, p.id), reverse=True)
        return mine[:limit]

    async def complete(
        self, purchase_id: str, payment_intent_id: str | None, now: datetime
    ) -> Purchase | None:
        found = self._s.purchases.get(purchase_id)
        if found is None or found.status not in (PurchaseStatus.PENDING, PurchaseStatus.FAILED):
            return None
        done = replace(
            found,
            status=PurchaseStatus.COMPLETED,
            completed_at=now,
            stripe_payment_intent_id=found.stripe_payment_intent_id or payment_intent_id,
        )
        undoable_set(self._s.purchases, purchase_id, done, self._undo)
        return done

    async def fail(self, purchase_id: str) -> bool:
        found = self._s.purchases.get(purchase_id)
        if found is None or found.status != PurchaseStatus.PENDING:
            return False
        undoable_set(
            self._s.purchases, purchase_id, replace(found, status=PurchaseStatus.FAILED), self._undo
        )
        return True

    async def link(self, purchase_id: str, payment_intent_id: str, charge_id: str | None) -> None:
        found = self._s.purchases.get(purchase_id)
        if found is None:
            return
        linked = replace(
            found,
            stripe_payment_intent_id=found.stripe_payment_intent_id or payment_intent_id,
            stripe_charge_id=found.stripe_charge_id or charge_id,
        )
        self._unique(linked, skip=purchase_id)
        undoable_set(self._s.purchases, purchase_id, linked, self._undo)

    async def move_clawback(self, purchase_id: str, version: int, clawed_back: int) -> bool:
        found = self._s.purchases.get(purchase_id)
        if found is None or found.clawback_version != version:
            return False
        if not 0 <= clawed_back <= found.credits:  # the SQL CHECK constraint
            raise ValueError("clawed_back out of bounds")
        moved = replace(found, clawed_back=clawed_back, clawback_version=version + 1)
        undoable_set(self._s.purchases, purchase_id, moved, self._undo)
        return True


class MemoryCustomers:
    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    async def get(self, user_id: str) -> str | None:
        return self._s.customers.get(user_id)

    async def add(self, user_id: str, customer_id: str, now: datetime) -> str:
        if user_id not in self._s.customers:
            undoable_set(self._s.customers, user_id, customer_id, self._undo)
        return self._s.customers[user_id]


class MemoryPaymentEvents:
    def __init__(self, state: MemoryState, undo: list[Undo]) -> None:
        self._s = state
        self._undo = undo

    async def record(self, event_id: str, type: str, now: datetime) -> bool:
        if event_id in self._s.payment_events:
            return False
        undoable_set(self._s.payment_events, event_id, type, self._undo)
        return True

    async def seen(self, event_id: str) -> bool:
        return event_id in self._s.payment_events
