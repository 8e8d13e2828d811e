"""`mana-credits gifts`: look at gift codes and run the expiry sweep."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mana_credits_core.gifts import GiftCode

from .runtime import (
    DatabaseUrl,
    JsonOutput,
    WideOutput,
    cell_id,
    console,
    open_services,
    print_json,
    print_table,
    run,
)

app = typer.Typer(
    help="Gift codes: list, inspect, cancel, expire.", no_args_is_help=True, rich_markup_mode=None
)


def gift_json(g: GiftCode) -> dict[str, object]:
    return {
        "id": g.id,
        "code": g.code,
        "creatorId": g.creator_id,
        "totalCredits": g.total_credits,
        "type": g.type.value,
        "status": g.status.value,
        "targetEmail": g.target_email,
        "expiresAt": g.expires_at.isoformat(),
    }


GiftArg = Annotated[
    str,
    typer.Argument(metavar="GIFT", help="The gift's code (any case, dashes allowed) or its id."),
]


@app.command()
def show(gift: GiftArg, database_url: DatabaseUrl = None, json: JsonOutput = False) -> None:
    """Show one gift code.

    \b
    Examples:
      mana-credits gifts show ABCD-EFGH-JKMN
      mana-credits gifts show 438082b8-5d0e-4f5c-9d6b-2f0c1a7e9b41 --json
    """

    async def work() -> GiftCode:
        async with open_services(database_url, read_only=True) as services:
            return await services.gifts.lookup(gift)

    found = run(work)
    if json:
        print_json(gift_json(found))
    else:
        for key, value in gift_json(found).items():
            console.print(f"{key:>12}  {value}", markup=False, highlight=False)


@app.command("list")
def list_gifts(
    status: Annotated[str | None, typer.Option(help="Only gifts in this status.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first (≤ 100).")] = 50,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
    wide: WideOutput = False,
) -> None:
    """List gift codes, newest first (the code or the id names a gift in other commands).

    Example: mana-credits gifts list --status active --wide
    """

    async def work() -> list[GiftCode]:
        async with open_services(database_url, read_only=True) as services:
            return await services.gifts.recent(limit, status)

    gifts = run(work)
    if json:
        print_json([gift_json(g) for g in gifts])
        return
    table = Table("id", "code", "creator", "credits", "type", "status", "expires")
    table.columns[1].no_wrap = True
    for g in gifts:
        table.add_row(
            cell_id(g.id, wide), g.code, g.creator_id, str(g.total_credits), g.type, g.status,
            g.expires_at.date().isoformat(),
        )  # fmt: skip
    print_table(table, wide)


@app.command()
def cancel(gift: GiftArg, database_url: DatabaseUrl = None) -> None:
    """Cancel an active gift; its credits go back to its creator (once).

    Example: mana-credits gifts cancel ABCD-EFGH-JKMN
    """

    async def work() -> GiftCode:
        async with open_services(database_url) as services:
            found = await services.gifts.lookup(gift)
            return await services.gifts.cancel_as_operator(found.id)

    done = run(work)
    console.print(f"cancelled {done.code}: {done.total_credits} credits back to {done.creator_id}")


@app.command()
def expire(
    gift: Annotated[
        str | None,
        typer.Argument(
            metavar="GIFT", help="One overdue gift (code or id); default: every overdue gift."
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Expire overdue active gifts and return their credits to the creators (once).

    Safe to run while the server's own sweep runs.

    \b
    Examples:
      mana-credits gifts expire
      mana-credits gifts expire ABCD-EFGH-JKMN
    """

    async def work() -> int:
        async with open_services(database_url) as services:
            if gift is None:
                return await services.gifts.expire()
            found = await services.gifts.lookup(gift)
            await services.gifts.expire_one(found.id)
            return 1

    expired = run(work)
    if json:
        print_json({"expired": expired})
    else:
        console.print(f"expired {expired} gift(s)")
