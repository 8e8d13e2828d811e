"""`mana-credits credits` and `reconcile`: balances, history and invariants."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_core import Balance, LedgerEntry, ReconcileReport

from .runtime import DatabaseUrl, JsonOutput, console, print_json, run, settings_for

app = typer.Typer(help="Read balances and ledger history.", no_args_is_help=True)

UserArg = Annotated[str, typer.Argument(help="The user id.")]


@app.command()
def balance(user: UserArg, database_url: DatabaseUrl = None, json: JsonOutput = False) -> None:
    """Show USER's balance (created at zero if the user is new).

    Example: mana-credits credits balance alice --json
    """

    async def work() -> Balance:
        async with bootstrap(settings_for(database_url)) as services:
            return await services.credits.balance(user)

    found = run(work)
    shape = {
        "userId": found.user_id,
        "balance": found.balance,
        "totalEarned": found.total_earned,
        "totalSpent": found.total_spent,
    }
    if json:
        print_json(shape)
    else:
        console.print(
            f"{found.user_id}: [bold]{found.balance}[/bold] credits "
            f"(earned {found.total_earned}, spent {found.total_spent})"
        )


@app.command()
def history(
    user: UserArg,
    limit: Annotated[int, typer.Option(help="How many entries, newest first.")] = 50,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """List USER's ledger entries, newest first.

    Example: mana-credits credits history alice --limit 10
    """

    async def work() -> list[LedgerEntry]:
        async with bootstrap(settings_for(database_url)) as services:
            return await services.credits.transactions(user, limit=limit)

    entries = run(work)
    if json:
        print_json([entry_json(e) for e in entries])
        return
    table = Table("when", "type", "amount", "after", "app", "description")
    for e in entries:
        table.add_row(
            e.created_at.isoformat(timespec="seconds"),
            e.type.value,
            f"{e.amount:+d}",
            str(e.balance_after),
            e.app_id,
            e.description,
        )
    console.print(table)


def entry_json(e: LedgerEntry) -> dict[str, object]:
    return {
        "id": e.id,
        "userId": e.user_id,
        "type": e.type.value,
        "status": e.status.value,
        "amount": e.amount,
        "balanceBefore": e.balance_before,
        "balanceAfter": e.balance_after,
        "appId": e.app_id,
        "description": e.description,
        "metadata": e.metadata,
        "idempotencyKey": e.idempotency_key,
        "createdAt": e.created_at.isoformat(),
        "completedAt": None if e.completed_at is None else e.completed_at.isoformat(),
    }


def reconcile(
    user: Annotated[str | None, typer.Option("--user", help="Check one user only.")] = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Check every ledger invariant; exit 1 with a report if anything drifted.

    Example: mana-credits reconcile --json
    """

    async def work() -> ReconcileReport:
        async with bootstrap(settings_for(database_url)) as services:
            return await services.reconcile.run(user_id=user)

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
        console.print(f"ok: {report.users_checked} users checked, no drift")
    else:
        table = Table("user", "check", "expected", "found", title="drift")
        for d in report.drifts:
            table.add_row(d.user_id, d.check, str(d.expected), str(d.found))
        console.print(table)
    if not report.ok:
        raise typer.Exit(1)
