"""`mana-credits reconcile`: check every ledger invariant."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from mana_credits_core import ReconcileReport

from .runtime import (
    DatabaseUrl,
    JsonOutput,
    console,
    err_console,
    known_user,
    open_services,
    print_json,
    print_table,
    run,
)


def reconcile(
    user: Annotated[
        str | None, typer.Option("--user", metavar="USER", help="Check one user only.")
    ] = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Check every ledger invariant; exit 1 on drift.

    Prints a report of what drifted.

    \b
    Example:
      mana-credits reconcile --json
    """

    async def work() -> ReconcileReport:
        # A progress line for people watching; nothing extra in pipes, files and CI logs.
        with Progress(
            SpinnerColumn(), TextColumn("checking: {task.completed} users"),
            console=err_console, transient=True, disable=not err_console.is_terminal,
        ) as bar:  # fmt: skip
            task = bar.add_task("reconcile")
            async with open_services(database_url, read_only=True) as services:
                report = await services.reconcile.run(
                    user_id=user, progress=lambda n: bar.advance(task, n)
                )
                if user is not None and report.users_checked == 0 and report.ok:
                    await known_user(services, user)  # no balance and no entries: a typo?
                return report

    report = run(work)
    if json:
        print_json(
            {
                "ok": report.ok,
                "usersChecked": report.users_checked,
                "drifts": [
                    {
                        "userId": d.user_id,
                        "check": d.check,
                        "expected": d.expected,
                        "found": d.found,
                    }
                    for d in report.drifts
                ],
            }
        )
    elif report.ok:
        users = "1 user" if report.users_checked == 1 else f"{report.users_checked} users"
        console.print(f"ok: {users} checked, no drift")
    else:
        table = Table("user", "check", "expected", "found", title="drift")
        for d in report.drifts:
            table.add_row(d.user_id, d.check, str(d.expected), str(d.found))
        print_table(table, shortened=False)
    if not report.ok:
        raise typer.Exit(1)
