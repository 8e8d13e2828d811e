"""Naming purchases and packages by the first characters of their ids (operators).

Tables print ids shortened; these lookups return every id a shortened one may mean,
so the caller decides between "that one", "none" and "several" (part of
`PurchasesService`).
"""

from __future__ import annotations

from .. import validation as v
from ..ports import Store


class PurchaseLookups:
    """Prefix lookups of `PurchasesService`."""

    _store: Store

    async def purchase_ids_starting_with(
        self, prefix: str, limit: int = v.MAX_PAGE_SIZE + 1
    ) -> list[str]:
        """Ids of the purchases whose id begins with `prefix` (stripped, lower-cased),
        in id order, at most `limit` (capped at MAX_PAGE_SIZE + 1); a full id yields
        itself. Raises `InvalidInput` ("purchaseId") for a blank or malformed prefix,
        ("limit") for a bad limit."""
        wanted = v.id_prefix(prefix, "purchaseId")
        async with self._store.reader() as uow:
            return await uow.purchases.ids_starting_with(wanted, v.match_limit(limit))

    async def package_ids_starting_with(
        self, prefix: str, limit: int = v.MAX_PAGE_SIZE + 1
    ) -> list[str]:
        """Ids of the packages (active or not) whose id begins with `prefix`, as
        `purchase_ids_starting_with` does; `InvalidInput` names "packageId"."""
        wanted = v.id_prefix(prefix, "packageId")
        async with self._store.reader() as uow:
            return await uow.packages.ids_starting_with(wanted, v.match_limit(limit))
