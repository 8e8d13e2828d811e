"""The operator console's changes to the package catalogue: add, edit, take off sale
and put back on sale, each through `PackageCatalogue` (the use cases `mana-credits
packages` runs) and recorded once in the audit log with the operator and a reason.

A change carries a key (the console form's hidden idempotency key). The audit entry's
id follows from it and is written in the change's own transaction before the package,
so the same form sent twice, even at once, changes the catalogue once and is recorded
once (the audit log's primary key decides which, not a read beforehand).
"""

from __future__ import annotations

import uuid
from typing import Any

from .. import validation as v
from ..console import AuditEntry
from ..errors import Conflict, InvalidInput, PackageNotFound
from ..ports import Clock, Store
from ..purchases import Package
from .console import AUDIT_PAGE
from .packages import UpdateAudit
from .purchases import PurchasesService

# Package ids of console additions are UUIDs derived from the form's key, so a form sent
# again names the same package (and the same audit entry).
PACKAGE_IDS = uuid.UUID("5b0c7f0e-9d1c-4f43-8f5e-4a7c9f1d2b60")
MAX_KEY = 100
EDITABLE = ("name", "description", "credits", "price_euro_cents", "sort_order")
DETAIL_NAMES = {
    "name": "name",
    "description": "description",
    "credits": "credits",
    "price_euro_cents": "priceEuroCents",
    "sort_order": "sortOrder",
    "active": "active",
}


class PackageNameOnSale(Conflict):
    """A package of this name is on sale already (and adding another was not asked)."""

    code = "package_exists"


class NothingToChange(InvalidInput):
    """An edit that changes no field."""

    code = "nothing_to_change"


class ConsoleCatalogue:
    """The catalogue changes an operator makes in the console, audited."""

    def __init__(self, store: Store, clock: Clock, purchases: PurchasesService) -> None:
        self._store = store
        self._clock = clock
        self._purchases = purchases

    async def packages(self) -> list[Package]:
        """Every package, on sale or not, by sort order then name."""
        return await self._purchases.packages(include_inactive=True)

    async def package(self, package_id: str) -> Package:
        """The package `package_id`. Raises `PackageNotFound`, `InvalidInput`."""
        wanted = v.identifier(package_id, "packageId")
        for found in await self.packages():
            if found.id == wanted:
                return found
        raise PackageNotFound("Package not found")

    async def add(
        self,
        operator: str,
        key: str,
        reason: str,
        *,
        name: str,
        credits: int,
        price_euro_cents: int,
        description: str | None = None,
        sort_order: int | None = None,
        same_name: bool = False,
    ) -> Package:
        """`PackageCatalogue.add_package` (`credits` in credits, `price_euro_cents` in
        euro cents), audited as `package-add` with the package id as subject. The same
        `key` again adds nothing and returns the package it added. A name on sale
        already (any case) is refused unless `same_name`. Raises `InvalidInput` (a bad
        field, key or reason), `PackageNameOnSale`."""
        reason = _reason(reason)
        package_id = str(uuid.uuid5(PACKAGE_IDS, _key(key)))
        if not same_name:
            wanted = v.text(name, "name", 100, multiline=False).strip().casefold()
            for other in await self._purchases.packages(include_inactive=False):
                if other.id != package_id and other.name.strip().casefold() == wanted:
                    raise PackageNameOnSale(
                        f"{other.name} is on sale already: edit it, or tick"
                        " 'add it under the same name' to sell a second offer"
                    )

        def audit(package: Package) -> AuditEntry:
            details = {DETAIL_NAMES[f]: getattr(package, f) for f in EDITABLE}
            # One entry per package added: its id follows from the key already.
            entry_id = f"package-add:{package.id}"
            return self._entry(entry_id, operator, "package-add", package.id, reason, details)

        return await self._purchases.add_package(
            name,
            credits,
            price_euro_cents,
            description=description,
            sort_order=sort_order,
            package_id=package_id,
            audit=audit,
        )

    async def edit(
        self,
        operator: str,
        key: str,
        reason: str,
        package_id: str,
        *,
        name: str,
        description: str,
        credits: int,
        price_euro_cents: int,
        sort_order: int,
    ) -> Package:
        """`PackageCatalogue.update_package` to these values, audited as
        `package-edit` with each changed field's old and new value (blank
        `description`: none). Raises `PackageNotFound`, `InvalidInput` (a
        description cannot be removed once set), `NothingToChange` when every value
        is the current one."""
        reason = _reason(reason)
        key = _key(key)
        current = await self.package(package_id)
        if not description.strip() and current.description is not None:
            raise InvalidInput(
                "description", "description cannot be removed once set: write another one"
            )
        wanted: dict[str, Any] = {
            "name": name,
            "description": description if description.strip() else None,
            "credits": credits,
            "price_euro_cents": price_euro_cents,
            "sort_order": sort_order,
        }
        changes = {f: value for f, value in wanted.items() if getattr(current, f) != value}
        if not changes:
            if await self._recorded(_change_id("package-edit", current.id, key), current.id):
                return current  # this very form was applied already: a resend
            raise NothingToChange("package", "nothing to change: every value is as it was")
        return await self._purchases.update_package(
            current.id, **changes, audit=self._change_audit(operator, key, "package-edit", reason)
        )

    async def _recorded(self, entry_id: str, subject: str) -> bool:
        """Whether the audit entry `entry_id` is among the newest about `subject`
        (where a form sent a moment ago has its entry)."""
        async with self._store.reader() as uow:
            recent = await uow.console.audit(AUDIT_PAGE, 0, subject)
        return any(entry.id == entry_id for entry in recent)

    async def set_on_sale(
        self, operator: str, key: str, reason: str, package_id: str, on_sale: bool
    ) -> tuple[Package, bool]:
        """Take the package off sale (`on_sale` False, audited as `package-deactivate`)
        or put it back (`package-activate`). Returns the package and whether this
        call changed it: one already so is left alone and nothing is recorded.
        Raises `PackageNotFound`, `InvalidInput`."""
        reason = _reason(reason)
        key = _key(key)
        current = await self.package(package_id)
        if current.active == on_sale:
            return current, False
        action = "package-activate" if on_sale else "package-deactivate"
        changed = await self._purchases.update_package(
            current.id, active=on_sale, audit=self._change_audit(operator, key, action, reason)
        )
        return changed, True

    def _change_audit(self, operator: str, key: str, action: str, reason: str) -> UpdateAudit:
        def audit(before: Package, after: Package) -> AuditEntry:
            details: dict[str, Any] = {}
            for field, label in DETAIL_NAMES.items():
                old, new = getattr(before, field), getattr(after, field)
                if old != new:
                    details[label] = f"{old} → {new}"
            entry_id = _change_id(action, before.id, key)
            return self._entry(entry_id, operator, action, before.id, reason, details)

        return audit

    def _entry(
        self,
        entry_id: str,
        operator: str,
        action: str,
        subject: str,
        reason: str,
        details: dict[str, Any],
    ) -> AuditEntry:
        return AuditEntry(
            id=entry_id,
            operator=operator,
            action=action,
            subject=subject,
            reason=reason,
            details=details,
            created_at=self._clock.now(),
        )


def _change_id(action: str, package_id: str, key: str) -> str:
    """The audit id of a change: one per form and package; a UUID keeps the id within
    its column."""
    return f"{action}:{uuid.uuid5(PACKAGE_IDS, f'{package_id}:{key}')}"


def _reason(reason: str) -> str:
    return v.text(reason, "reason", v.MAX_REASON).strip()


def _key(key: str) -> str:
    if not key.strip():
        raise InvalidInput("key", "the form has no key: reload the page and send it again")
    return v.identifier(key.strip(), "key", MAX_KEY)
