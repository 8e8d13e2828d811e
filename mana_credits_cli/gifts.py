"""`mana-credits gifts`: look at gift codes and run the expiry sweep."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mana_credits_core.gifts import GiftCode

from .runtime import DatabaseUrl, JsonOutput, console, open_services, print_json, run

app = typer.Typer(help="Gift codes: list, inspect, cancel, expire.", no_args_is_help=True)


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


@app.command()
def show(
    code: Annotated[str, typer.Argument(help="The gift code (any case, dashes allowed).")],
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Show one gift code.

    Example: mana-credits gifts show ABCD-EFGH-JKMN
    """

    async def work() -> GiftCode:
        async with open_services(database_url, read_only=True) as services:
            return await services.gifts.info(code)

    gift = run(work)
    if json:
        print_json(gift_json(gift))
    else:
        for key, value in gift_json(gift).items():
            console.print(f"{key:>12}  {value}", markup=False, highlight=False)


@app.command("list")
def list_gifts(
    status: Annotated[str | None, typer.Option(help="Only gifts in this status.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first (≤ 100).")] = 50,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """List gift codes, newest first.

    Example: mana-credits gifts list --status active
    """

    async def work() -> list[GiftCode]:
        async with open_services(database_url, read_only=True) as services:
            return await services.gifts.recent(limit, status)

    gifts = run(work)
    if json:
        print_json([gift_json(g) for g in gifts])
        return
    table = Table("id", "code", "creator", "credits", "type", "status", "expires")
    for g in gifts:
        table.add_row(
            g.id, g.code, g.creator_id, str(g.total_credits), g.type, g.status,
            g.expires_at.date().isoformat(),
        )  # fmt: skip
    console.print(table)


@app.command()
def cancel(
    gift_id: Annotated[str, typer.Argument(help="The gift's id.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Cancel an active gift; its credits go back to its creator (once).

    Example: mana-credits gifts cancel 7c1e…
    """

    async def work() -> GiftCode:
        async with open_services(database_url) as services:
            return await services.gifts.cancel_as_operator(gift_id)

    gift = run(work)
    console.print(f"cancelled {gift.code}: {gift.total_credits} credits back to {gift.creator_id}")


@app.command()
def expire(database_url: DatabaseUrl = None, json: JsonOutput = False) -> None:
    """Expire every overdue active gift and return its credits to the creator (once).

    Safe to run while the server's own sweep runs. Example: mana-credits gifts expire
    """

    async def work() -> int:
        async with open_services(database_url) as services:
            return await services.gifts.expire()

    expired = run(work)
    if json:
        print_json({"expired": expired})
    else:
        console.print(f"expired {expired} gift(s)")
