"""Ids as people type them: tables print the first 8 characters, and commands take them.

A full id is used as is; a shorter one is a prefix that must name exactly one record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mana_credits_core.errors import (
    CreditsError,
    GiftNotFound,
    NotFound,
    PackageNotFound,
    PurchaseNotFound,
)

if TYPE_CHECKING:
    from mana_credits_core.services import Services

# kind: (table name in mana_credits_adapters.sql.tables, not-found error, listing command)
KINDS: dict[str, tuple[str, type[NotFound], str]] = {
    "purchase": ("purchases", PurchaseNotFound, "mana-credits purchases list"),
    "package": ("packages", PackageNotFound, "mana-credits packages list --all"),
    "gift": ("gift_codes", GiftNotFound, "mana-credits gifts list"),
}
# How many matches an ambiguous prefix counts at most (the message says "N or more").
COUNTED = 100


class AmbiguousId(CreditsError):
    """A shortened id that several records start with."""

    code = "ambiguous_id"


def not_found(kind: str, given: str) -> NotFound:
    """The kind's not-found error naming `given` and the command listing them."""
    _table, error, listing = KINDS[kind]
    what = "code or id" if kind == "gift" else "id"
    return error(f"no {kind} with {what} {given}, check it ({listing} shows them)")


async def full_id(services: Services, kind: str, given: str) -> str:
    """The one id of a `kind` ("purchase", "package" or "gift") starting with `given`.

    Raises the kind's `NotFound` naming `given` when none does, `AmbiguousId` with the
    number of matches when several do. A store without SQL tables (memory) takes
    `given` as the full id.
    """
    from mana_credits_adapters.sql.store import SqlStore

    store = services.store
    text = given.strip()
    if not isinstance(store, SqlStore) or not text:
        return given
    import sqlalchemy as sa

    from mana_credits_adapters.sql import tables

    table_name, _error, listing = KINDS[kind]
    table: sa.Table = getattr(tables, table_name)
    prefix = text.lower()  # our ids are lower-case UUIDs
    query = (
        sa.select(table.c.id)
        .where(table.c.id.startswith(prefix, autoescape=True))
        .order_by(table.c.id)
        .limit(COUNTED + 1)
    )
    async with store.engine.connect() as connection:
        found = [str(i) for i in (await connection.execute(query)).scalars()]
    if prefix in found:
        return prefix
    if not found:
        raise not_found(kind, given)
    if len(found) > 1:
        many = f"{COUNTED} or more" if len(found) > COUNTED else str(len(found))
        raise AmbiguousId(
            f"{many} {kind}s have an id starting with {given}, give more characters"
            f" ({listing} --wide shows them in full)"
        )
    return found[0]
