"""`mana-credits gifts`: look at gift codes and run the expiry sweep."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mana_credits_core.errors import Conflict, GiftNotCancellable, GiftNotFound
from mana_credits_core.gifts import GiftCode, GiftRedemption, GiftStatus
from mana_credits_core.validation import MAX_PAGE_SIZE

if TYPE_CHECKING:
    from mana_credits_core.services import Services

from .ids import full_id, not_found
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
        "message": g.message,
        "expiresAt": g.expires_at.isoformat(),
        "createdAt": g.created_at.isoformat(),
    }


def redemption_json(r: GiftRedemption) -> dict[str, object]:
    return {
        "userId": r.redeemer_user_id,
        "status": r.status.value,
        "credits": r.credits_received,
        "appId": r.source_app_id,
        "createdAt": r.created_at.isoformat(),
    }


class GiftNotExpired(Conflict):
    """`gifts expire GIFT` of an active gift whose expiry has not come yet."""

    code = "gift_not_expired"


async def find_gift(services: Services, given: str) -> GiftCode:
    """The gift with this code or id, or whose id starts with `given` (as tables show).

    Raises `GiftNotFound` naming `given`, `AmbiguousId` for a prefix of several ids."""
    try:
        return await services.gifts.lookup(given)
    except GiftNotFound:
        pass
    found = await full_id(services, "gift", given)
    try:
        return await services.gifts.lookup(found)
    except GiftNotFound as exc:
        raise not_found("gift", given) from exc


def not_returnable(gift: GiftCode, done: str) -> Conflict:
    """Why cancel or expire cannot return an inactive gift's credits; `done` is what
    the command does to a gift, as a participle ("cancelled", "expired")."""
    return GiftNotCancellable(
        f"gift {gift.code} is {gift.status}, only active gifts can be {done}"
        f" (mana-credits gifts show {gift.code})"
    )


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

    async def work() -> tuple[GiftCode, list[GiftRedemption]]:
        async with open_services(database_url, read_only=True) as services:
            found = await find_gift(services, gift)
            return found, await services.gifts.redemptions(found.id)

    found, redemptions = run(work)
    if json:
        print_json(gift_json(found) | {"redemptions": [redemption_json(r) for r in redemptions]})
        return
    for key, value in gift_json(found).items():
        if value is not None:  # a simple gift has no target e-mail, many have no message
            console.print(f"{key:>12}  {value}", markup=False, highlight=False)
    for r in redemptions:
        app = f" in {r.source_app_id}" if r.source_app_id else ""
        console.print(
            f"{'redemption':>12}  {r.redeemer_user_id}: {r.status}, {r.credits_received} credits"
            f"{app}, {r.created_at:%Y-%m-%d %H:%M} UTC",
            markup=False,
            highlight=False,
        )
    if not redemptions:
        console.print(f"{'redemptions':>12}  none", markup=False, highlight=False)


@app.command("list")
def list_gifts(
    status: Annotated[GiftStatus | None, typer.Option(help="Only gifts in this status.")] = None,
    limit: Annotated[
        int, typer.Option(help="How many, newest first.", min=1, max=MAX_PAGE_SIZE)
    ] = 50,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
    wide: WideOutput = False,
) -> None:
    """List gift codes, newest first.

    The code or the id names a gift in other commands.

    \b
    Example:
      mana-credits gifts list --status active --wide
    """

    async def work() -> list[GiftCode]:
        async with open_services(database_url, read_only=True) as services:
            return await services.gifts.recent(limit, None if status is None else status.value)

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
    if not gifts:
        console.print("no gifts")


@app.command()
def cancel(gift: GiftArg, database_url: DatabaseUrl = None) -> None:
    """Cancel an active gift; its credits go back to its creator (once).

    \b
    Example:
      mana-credits gifts cancel ABCD-EFGH-JKMN
    """

    async def work() -> GiftCode:
        async with open_services(database_url) as services:
            found = await find_gift(services, gift)
            try:
                return await services.gifts.cancel_as_operator(found.id)
            except GiftNotCancellable as exc:
                now = await services.gifts.lookup(found.id)
                raise not_returnable(now, "cancelled") from exc

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
    """Expire overdue gifts; credits go back to creators.

    Each gift's credits return to its creator once.

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
            found = await find_gift(services, gift)
            try:
                await services.gifts.expire_one(found.id)
            except GiftNotCancellable as exc:
                now = await services.gifts.lookup(found.id)
                if now.status != GiftStatus.ACTIVE:
                    raise not_returnable(now, "expired") from exc
                raise GiftNotExpired(
                    f"gift {now.code} is active until {now.expires_at:%Y-%m-%d %H:%M} UTC,"
                    f" not expired yet; mana-credits gifts cancel {now.code} returns its"
                    " credits now"
                ) from exc
            return 1

    expired = run(work)
    if json:
        print_json({"expired": expired})
    else:
        console.print(f"expired {expired} gift(s)")
