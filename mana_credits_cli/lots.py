"""`mana-credits credits lots` and the lot options of `credits grant`: when granted
credits expire and in which order they are spent (docs/credits.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mana_credits_core import InvalidInput
from mana_credits_core.services.lots import MAX_EXPIRING_DAYS

from .runtime import (
    DatabaseUrl,
    JsonOutput,
    UserArg,
    WideOutput,
    cell_id,
    console,
    known_user,
    open_services,
    print_json,
    print_table,
    run,
)

if TYPE_CHECKING:
    from mana_credits_core.lots import Lot

UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
LONGEST = timedelta(days=MAX_EXPIRING_DAYS)
LOT_FIELDS = {"expiresAt": "--expires-in", "priority": "--priority"}

ExpiresIn = Annotated[
    str | None,
    typer.Option(
        "--expires-in",
        metavar="DURATION",
        help="The credits expire after this long: a whole number and d, h or m (30d, 12h,"
        " 90m); default: never.",
    ),
]
Priority = Annotated[
    int | None,
    typer.Option(
        "--priority", metavar="N", help="Spending order, 0..100, lower first (default 50)."
    ),
]


def duration(text: str) -> timedelta:
    """`30d`, `12h` or `90m` as a timedelta: one whole number (no sign) and one unit,
    at most `MAX_EXPIRING_DAYS` days. Raises `InvalidInput` (field `expiresAt`)."""
    found = re.fullmatch(r"([0-9]{1,7})([dhm])", text)
    if found is None:
        raise InvalidInput(
            "expiresAt",
            f"--expires-in must be a whole number and d, h or m (30d, 12h, 90m), not {text!r}",
        )
    length = int(found[1]) * UNITS[found[2]]
    if not timedelta(0) < length <= LONGEST:
        raise InvalidInput(
            "expiresAt", f"--expires-in must be 1m..{MAX_EXPIRING_DAYS}d, not {text!r}"
        )
    return length


def expires_at(expires_in: str | None) -> datetime | None:
    """When credits granted now for `expires_in` expire (None: never)."""
    return None if expires_in is None else datetime.now(UTC) + duration(expires_in)


def lots(
    user: UserArg,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
    wide: WideOutput = False,
) -> None:
    """List USER's credit lots with credits left, in spending order.

    The next debit takes from the first lot. Spent lots are not shown.

    \b
    Example:
      mana-credits credits lots alice --json
    """

    async def work() -> list[Lot]:
        async with open_services(database_url, read_only=True) as services:
            await known_user(services, user)
            return await services.lots.open_lots(user)

    found = run(work)
    if json:
        print_json([lot_json(lot) for lot in found])
        return
    table = Table("id", "source", "amount", "remaining", "priority", "expires")
    for lot in found:
        table.add_row(
            cell_id(lot.id, wide),
            lot.source.value,
            str(lot.amount),
            str(lot.remaining),
            str(lot.priority),
            "never" if lot.expires_at is None else lot.expires_at.isoformat(timespec="seconds"),
        )
    print_table(table, wide)
    if not found:
        console.print(f"{user} has no credits left in any lot")


def lot_json(lot: Lot) -> dict[str, object]:
    return {
        "id": lot.id,
        "source": lot.source.value,
        "amount": lot.amount,
        "remaining": lot.remaining,
        "priority": lot.priority,
        "expiresAt": None if lot.expires_at is None else lot.expires_at.isoformat(),
        "createdAt": lot.created_at.isoformat(),
    }


def expire(database_url: DatabaseUrl = None, json: JsonOutput = False) -> None:
    """Expire the credits of every lot past its expiry date, now.

    Each lot's free credits leave its owner's balance once, with one `expire` ledger
    entry; held credits expire when their reservation is released. The server runs
    this sweep every MANA_CREDITS_SWEEP_INTERVAL seconds; running it here as well is
    safe.

    \b
    Example:
      mana-credits credits expire
    """

    async def work() -> int:
        async with open_services(database_url) as services:
            return await services.lots.expire()

    expired = run(work)
    if json:
        print_json({"expired": expired})
    else:
        console.print(f"expired the credits of {expired} lot(s)")
