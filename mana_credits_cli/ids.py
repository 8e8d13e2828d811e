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
    from collections.abc import Awaitable, Callable

    from mana_credits_core.services import Services

# kind: (not-found error, listing command)
KINDS: dict[str, tuple[type[NotFound], str]] = {
    "purchase": (PurchaseNotFound, "mana-credits purchases list"),
    "package": (PackageNotFound, "mana-credits packages list --all"),
    "gift": (GiftNotFound, "mana-credits gifts list"),
}
# How many matches an ambiguous prefix counts at most (the message says "N or more").
COUNTED = 100


class AmbiguousId(CreditsError):
    """A shortened id that several records start with."""

    code = "ambiguous_id"


def not_found(kind: str, given: str) -> NotFound:
    """The kind's not-found error naming `given` and the command listing them."""
    error, listing = KINDS[kind]
    what = "code or id" if kind == "gift" else "id"
    return error(f"no {kind} with {what} {given}, check it ({listing} shows them)")


def lookup_of(services: Services, kind: str) -> Callable[[str, int], Awaitable[list[str]]]:
    """The use case listing the ids of a `kind` that start with a prefix."""
    lookups = {
        "purchase": services.purchases.purchase_ids_starting_with,
        "package": services.purchases.package_ids_starting_with,
        "gift": services.gifts.gift_ids_starting_with,
    }
    return lookups[kind]


async def full_id(services: Services, kind: str, given: str) -> str:
    """The one id of a `kind` ("purchase", "package" or "gift") starting with `given`.

    Raises the kind's `NotFound` naming `given` when none does, `AmbiguousId` with the
    number of matches when several do, `InvalidInput` for a blank `given`.
    """
    _error, listing = KINDS[kind]
    found = await lookup_of(services, kind)(given, COUNTED + 1)
    prefix = given.strip().lower()  # as the lookup matched it
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
