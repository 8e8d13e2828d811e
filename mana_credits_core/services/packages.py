"""The package catalogue: the credit packages on sale (part of `PurchasesService`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .. import validation as v
from ..console import AuditEntry
from ..errors import Conflict, InvalidInput, PackageNotFound
from ..ports import Clock, IdGenerator, Store
from ..purchases import DEFAULT_CATALOGUE, Package

MAX_PRICE_CENTS = 1_000_000  # ten thousand euros: no package costs more

AddAudit = Callable[[Package], AuditEntry]
"""The audit entry of a package being added (the console's record of it)."""
UpdateAudit = Callable[[Package, Package], AuditEntry]
"""The audit entry of a package change, given the package before and after it."""


class PackageCatalogue:
    """Lists, adds and changes packages; `PurchasesService` sells them."""

    _store: Store
    _clock: Clock
    _ids: IdGenerator

    async def packages(self, *, include_inactive: bool = False) -> list[Package]:
        async with self._store.unit_of_work() as uow:
            return await uow.packages.list(active_only=not include_inactive)

    async def add_package(
        self,
        name: str,
        credits: int,
        price_euro_cents: int,
        *,
        description: str | None = None,
        sort_order: int | None = None,
        stripe_price_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        package_id: str | None = None,
        audit: AddAudit | None = None,
    ) -> Package:
        """Put a package on sale (`credits` in credits, `price_euro_cents` in euro
        cents); without `sort_order` it goes after the last package.

        With `audit`, its entry is recorded in the same transaction, before the
        package is written: when that entry's id is recorded already (the same change
        sent again), nothing is added and the package of that id as it is now is
        returned, so `package_id` (else a new id) must follow from what makes the change
        unique. Raises `InvalidInput` for a bad name, credits, price or sort order.
        """
        now = self._clock.now()
        package = Package(
            id=self._ids.new_id() if package_id is None else v.identifier(package_id, "packageId"),
            name=v.text(name, "name", 100, multiline=False),
            description=v.optional_text(description, "description", v.MAX_DESCRIPTION),
            credits=v.amount(credits, "credits"),
            price_euro_cents=_price(price_euro_cents),
            stripe_price_id=None
            if stripe_price_id is None
            else v.identifier(stripe_price_id, "stripePriceId"),
            active=True,
            sort_order=0 if sort_order is None else _sort_order(sort_order),
            metadata=v.metadata(metadata),
            created_at=now,
            updated_at=now,
        )
        async with self._store.unit_of_work() as uow:
            if sort_order is None:
                orders = [p.sort_order for p in await uow.packages.list(active_only=False)]
                package = replace(package, sort_order=max(orders, default=-1) + 1)
            if audit is not None and not await uow.console.record(audit(package)):
                return await uow.packages.get(package.id) or package
            await uow.packages.add(package)
            await uow.commit()
        return package

    async def update_package(
        self,
        package_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        credits: int | None = None,
        price_euro_cents: int | None = None,
        sort_order: int | None = None,
        active: bool | None = None,
        audit: UpdateAudit | None = None,
    ) -> Package:
        """Change a package; purchases already started keep the terms they had.

        With `audit`, its entry (given the package before and after) is recorded in the
        same transaction: when its id is recorded already (the same change sent again),
        nothing is changed and the package as it is returned, or `Conflict` raised if
        the values asked for are not the package's. Raises `PackageNotFound`,
        `InvalidInput` for a bad field."""
        async with self._store.unit_of_work() as uow:
            found = await uow.packages.get(v.identifier(package_id, "packageId"))
            if found is None:
                raise PackageNotFound("Package not found")
            changed = replace(
                found,
                name=found.name if name is None else v.text(name, "name", 100, multiline=False),
                description=found.description
                if description is None
                else v.text(description, "description", v.MAX_DESCRIPTION),
                credits=found.credits if credits is None else v.amount(credits, "credits"),
                price_euro_cents=found.price_euro_cents
                if price_euro_cents is None
                else _price(price_euro_cents),
                sort_order=found.sort_order if sort_order is None else _sort_order(sort_order),
                active=found.active if active is None else active,
                updated_at=self._clock.now(),
            )
            if audit is not None and not await uow.console.record(audit(found, changed)):
                # This change's key is recorded: the same change sent again (also at
                # once: read again, as that one committed it) leaves the package as it
                # is; other values under the key change nothing.
                now = await uow.packages.get(found.id) or found
                given = {
                    "name": name,
                    "description": description,
                    "credits": credits,
                    "price_euro_cents": price_euro_cents,
                    "sort_order": sort_order,
                    "active": active,
                }
                asked = [f for f, value in given.items() if value is not None]
                if any(getattr(changed, f) != getattr(now, f) for f in asked):
                    raise Conflict(
                        "this form was already sent with other values; reload the page "
                        "to change the package again"
                    )
                return now
            await uow.packages.update(changed)
            await uow.commit()
        return changed

    async def ensure_default_catalogue(self) -> int:
        """Create the default packages in an empty catalogue; returns how many."""
        async with self._store.unit_of_work() as uow:
            if await uow.packages.count():
                return 0
        for order, (name, description, credits, price) in enumerate(DEFAULT_CATALOGUE):
            await self.add_package(name, credits, price, description=description, sort_order=order)
        return len(DEFAULT_CATALOGUE)


def _price(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PRICE_CENTS:
        raise InvalidInput("priceEuroCents", f"priceEuroCents must be 1..{MAX_PRICE_CENTS}")
    return value


MAX_SORT_ORDER = 1_000_000


def _sort_order(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("sortOrder", "sortOrder must be an integer")
    if abs(value) > MAX_SORT_ORDER:
        raise InvalidInput(
            "sortOrder", f"sortOrder must be from -{MAX_SORT_ORDER} to {MAX_SORT_ORDER}"
        )
    return value
