"""`mana-credits sync` and `billing`: Cloud Sync subscriptions and the billing run."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.progress import Progress

from mana_credits_core.sync import BillingReport, SyncStatus

from .runtime import (
    DatabaseUrl,
    JsonOutput,
    NewUser,
    UserArg,
    console,
    creditable,
    err_console,
    known_user,
    open_services,
    print_json,
    run,
)

app = typer.Typer(
    help="Cloud Sync subscriptions: status, admin gifts.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
billing = typer.Typer(
    help="The Cloud Sync billing run.", no_args_is_help=True, rich_markup_mode=None
)


def status_json(user: str, status: SyncStatus) -> dict[str, object]:
    return {
        "userId": user,
        "active": status.active,
        "interval": status.interval.value,
        "nextChargeAt": None
        if status.next_charge_at is None
        else status.next_charge_at.isoformat(),
        "pausedAt": None if status.paused_at is None else status.paused_at.isoformat(),
        "gifted": status.gifted,
    }


def when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def show(user: str, status: SyncStatus, json: bool) -> None:
    if json:
        print_json(status_json(user, status))
        return
    if status.gifted:
        state = "active (gifted: never charged)"
    elif status.active:
        state = "active"
    elif status.paused_at is not None:
        state = "paused (credits ran short)"
    else:
        state = "inactive"
    rows = {
        "user": user,
        "sync": state,
        "interval": status.interval.value,
        "next charge": when(status.next_charge_at),
        "paused since": when(status.paused_at),
    }
    for key, value in rows.items():
        console.print(f"{key:>12}  {value}", markup=False, highlight=False)


@app.command()
def status(user: UserArg, database_url: DatabaseUrl = None, json: JsonOutput = False) -> None:
    """Show USER's Cloud Sync subscription.

    \b
    Example:
      mana-credits sync status alice --json
    """

    async def work() -> SyncStatus:
        async with open_services(database_url, read_only=True) as services:
            found = await services.sync.find(user)
            if found is None:
                await known_user(services, user)  # an error for a user never seen
                return await services.sync.status(user)
            return found

    show(user, run(work), json)


@app.command()
def gift(
    user: UserArg,
    by: Annotated[str, typer.Option("--by", help="The operator granting it (audit).")],
    new_user: NewUser = False,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Gift Cloud Sync to USER: never charged, never paused, until revoked.

    \b
    Example:
      mana-credits sync gift alice --by ops@mana
    """

    async def work() -> SyncStatus:
        async with open_services(database_url) as services:
            await creditable(services, user, new_user, "gift Cloud Sync to")
            await services.sync.gift(user, by)
            return await services.sync.status(user)

    show(user, run(work), json)


@app.command()
def revoke(user: UserArg, database_url: DatabaseUrl = None, json: JsonOutput = False) -> None:
    """Revoke USER's Cloud Sync gift.

    Sync stops; the user may activate it paid.

    \b
    Example:
      mana-credits sync revoke alice
    """

    async def work() -> SyncStatus:
        async with open_services(database_url) as services:
            await services.sync.revoke_gift(user)
            return await services.sync.status(user)

    show(user, run(work), json)


@billing.command("run")
def billing_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what is due, charge nothing.")
    ] = False,
    batch_size: Annotated[int, typer.Option(help="Subscriptions per transaction.", min=1)] = 500,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Charge every due Cloud Sync period once.

    Pauses (and notifies) where credits fall short.

    Safe while the server's own hourly run is going.

    \b
    Example:
      mana-credits billing run --dry-run
    """

    async def work() -> BillingReport:
        async with open_services(database_url) as services:
            due = (await services.sync.charge_due(dry_run=True)).total
            if dry_run:
                return BillingReport(total=due)
            # On stderr and only on a terminal: a transient bar elsewhere leaves a blank line.
            with Progress(
                console=err_console, transient=True, disable=json or not err_console.is_terminal
            ) as bar:
                task = bar.add_task("billing", total=due)
                return await services.sync.charge_due(
                    batch_size=batch_size, progress=lambda n: bar.advance(task, n)
                )

    report = run(work)
    shape = {
        "charged": report.charged,
        "paused": report.paused,
        "errors": report.errors,
        "total": report.total,
    }
    if json:
        print_json(shape | {"dryRun": dry_run})
    elif dry_run:
        console.print(f"{report.total} subscription(s) due; nothing charged (dry run)")
    else:
        console.print(f"charged {report.charged}, paused {report.paused}, errors {report.errors}")
    if report.errors:
        raise typer.Exit(1)
