"""`mana-credits report`: credits used per app and day, credits about to expire, and the
overview of the whole service."""

from __future__ import annotations

import enum
from collections import defaultdict
from typing import Annotated, Any

import typer
from rich.table import Table

from mana_credits_core import UsageStat
from mana_credits_core.ports import Expiring
from mana_credits_core.pricing import OperationTotal, counted, format_credits, operation_totals
from mana_credits_core.services import Overview
from mana_credits_core.services.lots import MAX_EXPIRING_DAYS
from mana_credits_core.services.overview import EXPIRING_WITHIN, MAX_OVERVIEW_DAYS

from .purchases import euros
from .runtime import DatabaseUrl, JsonOutput, console, open_services, print_json, print_table, run

app = typer.Typer(help="Reports.", no_args_is_help=True, rich_markup_mode=None)
BAR_WIDTH = 40


class UsageBy(enum.StrEnum):
    APP = "app"
    OPERATION = "operation"


@app.command()
def usage(
    days: Annotated[
        int, typer.Option(help="How many days back, today included.", min=1, max=3660)
    ] = 30,
    app_id: Annotated[
        str | None, typer.Option("--app", metavar="APP", help="One app only.")
    ] = None,
    by: Annotated[
        UsageBy,
        typer.Option(
            "--by",
            help="app: credits charged per app and day; operation: priced usage per"
            " operation over the period (calls, units, exact cost).",
        ),
    ] = UsageBy.APP,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Credits used per app and day, or per operation.

    By app (the default): credits charged per app and day, with a bar chart per day. With
    --by operation: priced usage per operation over the period. Per operation, the cost
    is exact in credits with up to three decimals (priced debits charge whole credits
    and carry the rest per user, so the costs of a period and the credits charged in it
    may differ by less than a credit per user).

    \b
    Examples:
      mana-credits report usage --days 7 --app chat
      mana-credits report usage --by operation --json
    """
    if by is UsageBy.OPERATION:
        by_operation(days, app_id, database_url, json)
        return

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


def by_operation(days: int, app_id: str | None, database_url: str | None, json: bool) -> None:
    """`report usage --by operation`: totals per operation over `days` days, dearest
    first; `app_id` keeps the operations the price list gives that app."""

    async def work() -> list[OperationTotal]:
        async with open_services(database_url, read_only=True) as services:
            rows = await services.credits.usage_by_operation(days)
            every = await services.prices.list(include_retired=True)
        totals = operation_totals(rows, every)
        return [t for t in totals if app_id is None or t.app_id == app_id]

    totals = run(work)
    if json:
        print_json(
            [
                {
                    "operation": t.operation,
                    "appId": t.app_id,
                    "calls": t.calls,
                    "quantity": t.quantity,
                    "costMilli": t.cost_milli,
                    "credits": format_credits(t.cost_milli),
                }
                for t in totals
            ]
        )
        return
    table = Table(
        "operation",
        "app",
        "calls",
        "quantity",
        "credits",
        title=f"usage by operation, last {days} days",
    )
    for t in totals:
        table.add_row(
            t.operation,
            t.app_id or "-",
            str(t.calls),
            str(t.quantity),
            format_credits(t.cost_milli),
        )
    print_table(table, shortened=False)
    if totals:
        cost = format_credits(sum(t.cost_milli for t in totals))
        calls = sum(t.calls for t in totals)
        console.print(f"total: {cost} credits in {counted(calls, 'call')}", highlight=False)
    else:
        console.print("no priced usage in this period")


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


@app.command()
def overview(
    days: Annotated[
        int,
        typer.Option(help="How many days back, today included.", min=1, max=MAX_OVERVIEW_DAYS),
    ] = 30,
    reconcile: Annotated[
        bool, typer.Option("--reconcile", help="Run reconcile first and show its result.")
    ] = False,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """What the service owes, sold and saw used: the console's overview.

    Credits owed to users (spendable and held), debt, credits sold and used over the
    last --days days, Cloud Sync subscriptions, gift codes, credits expiring within
    30 days, and credits used per app. The last reconcile is known to the server that
    ran it; here it is shown only with --reconcile, which runs it (reads only).

    \b
    Example:
      mana-credits report overview --days 7 --reconcile
    """

    async def work() -> Overview:
        async with open_services(database_url, read_only=True) as services:
            if reconcile:
                await services.reconcile_watch.check()
            return await services.overview.overview(days)

    found = run(work)
    if json:
        print_json(overview_json(found))
        return
    for label, value in overview_lines(found):
        console.print(f"{label:<20} {value}", highlight=False)
    per_app: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for s in found.usage:
        per_app[s.app_id][0] += s.credits_used
        per_app[s.app_id][1] += s.operations
    if per_app:
        table = Table("app", "credits", "operations", title=f"usage, last {days} days")
        for app_id, (credits, operations) in sorted(per_app.items()):
            table.add_row(app_id, str(credits), str(operations))
        print_table(table, shortened=False)


def overview_lines(o: Overview) -> list[tuple[str, str]]:
    """The overview as (label, value) lines for a terminal."""
    expiring_days = EXPIRING_WITHIN.days
    if o.reconcile is None:
        checked = "not checked here (pass --reconcile)"
    else:
        r = o.reconcile
        found = "ok" if r.ok else f"{counted(r.drifts, 'drift')} (run mana-credits reconcile)"
        checked = (
            f"{found}, {counted(r.users_checked, 'user')}, at {r.checked_at:%Y-%m-%d %H:%M} UTC"
        )
    return [
        ("period", f"{o.since} to {o.as_of:%Y-%m-%d} UTC ({counted(o.days, 'day')})"),
        (
            "owed to users",
            f"{o.outstanding} credits ({o.balances} spendable in "
            f"{counted(o.users, 'balance')}, {o.held} held by reservations)",
        ),
        ("debt", f"{o.debt} credits"),
        (
            "sold",
            f"{o.credits_sold} credits for {euros(o.euro_cents_sold)} "
            f"({counted(o.purchases, 'purchase')} completed"
            + (
                f"; {o.credits_clawed_back} credits clawed back since)"
                if o.credits_clawed_back
                else ")"
            ),
        ),
        ("used by apps", f"{o.credits_used} credits"),
        ("Cloud Sync", f"{o.sync_active} active, {o.sync_paused} paused, {o.sync_gifted} gifted"),
        ("gift codes", f"{o.gifts_active} active, holding {o.gift_credits} credits"),
        (
            f"expiring in {expiring_days} days",
            f"{o.expiring.credits} credits of {counted(o.expiring.users, 'user')} "
            f"({counted(o.expiring.lots, 'lot')})",
        ),
        ("last reconcile", checked),
    ]


def overview_json(o: Overview) -> dict[str, Any]:
    """The overview's `--json` shape: credits and euro cents as integers, times in UTC."""
    r = o.reconcile
    return {
        "asOf": o.as_of.isoformat(),
        "days": o.days,
        "since": o.since.isoformat(),
        "outstandingCredits": o.outstanding,
        "balanceCredits": o.balances,
        "heldCredits": o.held,
        "debtCredits": o.debt,
        "users": o.users,
        "purchases": o.purchases,
        "creditsSold": o.credits_sold,
        "euroCentsSold": o.euro_cents_sold,
        "creditsClawedBack": o.credits_clawed_back,
        "creditsUsed": o.credits_used,
        "sync": {"active": o.sync_active, "paused": o.sync_paused, "gifted": o.sync_gifted},
        "gifts": {"active": o.gifts_active, "credits": o.gift_credits},
        "expiring": {
            "days": EXPIRING_WITHIN.days,
            "credits": o.expiring.credits,
            "users": o.expiring.users,
            "lots": o.expiring.lots,
        },
        "reconcile": None
        if r is None
        else {
            "checkedAt": r.checked_at.isoformat(),
            "ok": r.ok,
            "drifts": r.drifts,
            "usersChecked": r.users_checked,
        },
        "usage": [
            {
                "day": s.day.isoformat(),
                "appId": s.app_id,
                "credits": s.credits_used,
                "operations": s.operations,
            }
            for s in o.usage
        ],
    }
