"""`mana-credits credits` and `reconcile`: balances, history and invariants."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from mana_credits_core import Balance, InvalidInput, LedgerEntry, LedgerResult, ReconcileReport
from mana_credits_core.services.credits import ADMIN_APP

from .runtime import DatabaseUrl, JsonOutput, console, open_services, print_json, run

app = typer.Typer(help="Read balances and ledger history.", no_args_is_help=True)

UserArg = Annotated[str, typer.Argument(help="The user id.")]


@app.command()
def balance(user: UserArg, database_url: DatabaseUrl = None, json: JsonOutput = False) -> None:
    """Show USER's balance (created at zero if the user is new).

    Example: mana-credits credits balance alice --json
    """

    async def work() -> Balance:
        async with open_services(database_url, read_only=True) as services:
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
    since: Annotated[
        datetime | None, typer.Option(help="Only entries from this date/time on (UTC).")
    ] = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """List USER's ledger entries, newest first.

    Example: mana-credits credits history alice --limit 10 --since 2026-11-01
    """

    async def work() -> list[LedgerEntry]:
        async with open_services(database_url, read_only=True) as services:
            entries = await services.credits.transactions(user, limit=limit)
        start = utc(since)
        return [e for e in entries if start is None or e.created_at >= start]

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


AMOUNT_SETTINGS = {"ignore_unknown_options": True}  # "-5" reaches the rules as an amount
Amount = Annotated[str, typer.Argument(help="Credits (a whole number ≥ 1).")]


def amount_of(text: str) -> int:
    """Parsed here, not by the option parser, so bad amounts exit 1 like other errors."""
    if not re.fullmatch(r"-?\d{1,19}", text.strip()):
        raise InvalidInput("amount", "amount must be a whole number")
    return int(text)


Reason = Annotated[str, typer.Option("--reason", help="Why: recorded on the ledger entry.")]
Key = Annotated[
    str | None, typer.Option("--idempotency-key", help="Makes a retry of this command a no-op.")
]


def show_result(result: LedgerResult, json: bool) -> None:
    if json:
        print_json(entry_json(result.entry) | {"replayed": result.replayed})
        return
    e = result.entry
    note = " (already applied: nothing changed)" if result.replayed else ""
    console.print(f"{e.user_id}: {e.type.value} {e.amount:+d}, balance {e.balance_after}{note}")


@app.command(context_settings=AMOUNT_SETTINGS)
def grant(
    user: UserArg,
    amount: Amount,
    reason: Reason,
    operator: Annotated[
        str, typer.Option(envvar="USER", help="Who grants (default: $USER); audited.")
    ] = "operator",
    idempotency_key: Key = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Give USER credits: an audited `grant` entry naming the operator and reason.

    Example: mana-credits credits grant alice 500 --reason "support ticket 4711"
    """

    async def work() -> LedgerResult:
        async with open_services(database_url) as services:
            return await services.credits.grant(
                user, amount_of(amount), reason, operator, idempotency_key=idempotency_key
            )

    show_result(run(work), json)


@app.command(context_settings=AMOUNT_SETTINGS)
def refund(
    user: UserArg,
    amount: Amount,
    reason: Reason,
    idempotency_key: Key = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Credit USER back (a `refund` entry), e.g. for a failed paid operation.

    Example: mana-credits credits refund alice 25 --reason "image job failed"
    """

    async def work() -> LedgerResult:
        async with open_services(database_url) as services:
            return await services.credits.refund(
                user, amount_of(amount), reason, app_id=ADMIN_APP, idempotency_key=idempotency_key
            )

    show_result(run(work), json)


@app.command(context_settings=AMOUNT_SETTINGS)
def debit(
    user: UserArg,
    amount: Amount,
    reason: Reason,
    app_id: Annotated[str, typer.Option("--app", help="The app to book it on.")] = ADMIN_APP,
    idempotency_key: Key = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Take credits from USER as a correction, under the same rules as the API.

    Example: mana-credits credits debit alice 10 --reason "duplicate grant"
    """

    async def work() -> LedgerResult:
        async with open_services(database_url) as services:
            return await services.credits.use(
                user, amount_of(amount), app_id, reason, idempotency_key=idempotency_key
            )

    show_result(run(work), json)


def utc(moment: datetime | None) -> datetime | None:
    """Dates typed on the command line are UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
        async with open_services(database_url, read_only=True) as services:
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
