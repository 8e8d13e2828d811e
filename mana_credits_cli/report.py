"""`mana-credits report`: credits used per app and day, credits about to expire."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

import typer
from rich.table import Table

from mana_credits_core import UsageStat
from mana_credits_core.ports import Expiring
from mana_credits_core.services.lots import MAX_EXPIRING_DAYS

from .runtime import DatabaseUrl, JsonOutput, console, open_services, print_json, print_table, run

app = typer.Typer(help="Reports.", no_args_is_help=True, rich_markup_mode=None)
BAR_WIDTH = 40


@app.command()
def usage(
    days: Annotated[
        int, typer.Option(help="How many days back, today included.", min=1, max=3660)
    ] = 30,
    app_id: Annotated[
        str | None, typer.Option("--app", metavar="APP", help="One app only.")
    ] = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Credits used per app and day, with a bar chart per day.

    \b
    Example:
      mana-credits report usage --days 7 --app chat
    """

    async def work() -> list[UsageStat]:
        async with open_services(database_url, read_only=True) as services:
            return await services.credits.usage_report(days, app_id)

    stats = run(work)
    if json:
        print_json(
            [
                {
                    "day": s.day.isoformat(),
                    "appId": s.app_id,
                    "credits": s.credits_used,
                    "operations": s.operations,
                }
                for s in stats
            ]
        )
        return
    per_day: dict[str, int] = defaultdict(int)
    for s in stats:
        per_day[s.day.isoformat()] += s.credits_used
    peak = max(per_day.values(), default=0)
    table = Table("day", "app", "credits", "operations", title=f"usage, last {days} days")
    for s in stats:
        table.add_row(s.day.isoformat(), s.app_id, str(s.credits_used), str(s.operations))
    print_table(table, shortened=False)
    for day, credits in per_day.items():
        width = round(BAR_WIDTH * credits / peak) if peak else 0
        console.print(f"{day} [green]{'█' * width}[/green] {credits}")
    if not stats:
        console.print("no usage in this period")


@app.command()
def expiring(
    days: Annotated[
        int, typer.Option(help="How many days ahead, from now.", min=1, max=MAX_EXPIRING_DAYS)
    ] = 30,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Credits expiring in the next --days days, and their users.

    Credits held by pending reservations are not counted; lots already past their date
    that the sweep has not reached yet are.

    \b
    Example:
      mana-credits report expiring --days 7
    """

    async def work() -> Expiring:
        async with open_services(database_url, read_only=True) as services:
            return await services.lots.expiring(days)

    found = run(work)
    if json:
        print_json(
            {"days": days, "credits": found.credits, "users": found.users, "lots": found.lots}
        )
        return
    users = "1 user" if found.users == 1 else f"{found.users} users"
    lots = "1 lot" if found.lots == 1 else f"{found.lots} lots"
    console.print(
        f"credits expiring in the next {days} days: {found.credits} credits of {users} ({lots})"
    )
