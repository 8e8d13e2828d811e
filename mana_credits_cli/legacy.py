"""`mana-credits db import-legacy`: bring the old service's database across."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from .runtime import (
    DatabaseUrl,
    JsonOutput,
    console,
    err_console,
    print_json,
    reported,
    run,
    settings_for,
)

if TYPE_CHECKING:
    from mana_credits_core.legacy.report import ImportReport

SHOWN_PER_KIND = 10  # anomalies listed per kind in the text report (--json lists all)

SourceUrl = Annotated[
    str,
    typer.Option(
        "--from",
        metavar="URL",
        help="The old service's database: postgresql://user:password@host/mana_credits.",
    ),
]


def import_legacy(
    source: SourceUrl,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Do everything, then roll it back: report only.")
    ] = False,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Copy the old service's database into this one, with a report.

    Balances, every ledger entry, packages, purchases, Stripe customers, usage, gift
    codes, redemptions, Cloud Sync subscriptions and reservations. Balances come across
    exactly; where the old ledger does not sum to a balance, one adjustment entry per
    user makes it agree. All in one transaction: an interrupted run leaves nothing, a
    rerun skips what is already there. Refuses a target holding other data for the same
    users and a source that is not the old layout (exit code 1).

    See docs/cutover.md for the whole switch.

    \b
    Example:
      mana-credits db import-legacy --from postgresql://mana@old-db/mana_credits --dry-run
    """
    from mana_credits_adapters.legacy.wiring import legacy_import

    async def work() -> ImportReport:
        started = time.perf_counter()
        # Bars for people watching; nothing extra in pipes, files and CI logs.
        with Progress(
            TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err_console, disable=not err_console.is_terminal,
        ) as bars:  # fmt: skip
            tasks: dict[str, TaskID] = {}

            def progress(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = bars.add_task(table, total=total or None)
                bars.advance(tasks[table], done)

            settings = settings_for(database_url)
            async with legacy_import(settings, source, dry_run=dry_run) as (importer, options):
                report = await importer.run(options, progress)
        report.seconds = time.perf_counter() - started
        return report

    report = run(work)
    from mana_credits_adapters.legacy.wiring import shown

    with reported():
        shown_source, shown_target = shown(settings_for(database_url), source)
    if json:
        print_json({"source": shown_source, "target": shown_target, **report.as_json()})
    else:
        console.print(f"from {shown_source}", markup=False, highlight=False)
        console.print(f"into {shown_target}", markup=False, highlight=False)
        show(report)


def show(report: ImportReport) -> None:
    """The report for people: counts per table, sums, adjustments, anomalies by kind."""
    table = Table("table", "old rows", "written", "already there", title="rows")
    for count in report.tables.values():
        table.add_row(count.table, str(count.source), str(count.written), str(count.skipped))
    console.print(table)
    # After = before + rows rebuilt + old negative balances raised to 0.
    parts = [f"{report.balance_before} in the old rows"]
    if report.rebuilt:
        parts.append(f"{report.rebuilt} in rows rebuilt from the ledger")
    if report.raised:
        parts.append(f"{report.raised} of negative balances raised to 0")
    console.print(
        f"users: {report.users}; balances here: {report.balance_after} credits"
        f" = {' + '.join(parts)}"
        + (f"; debt: {report.debt_after} credits" if report.debt_after else "")
    )
    if report.adjustments:
        adjusted = Table("user", "difference", "totalEarned", "totalSpent", title="adjustments")
        for a in report.adjustments:
            adjusted.add_row(
                a.user_id, f"{a.difference:+d}", f"{a.total_earned:+d}", f"{a.total_spent:+d}"
            )
        console.print(adjusted)
    for kind, found in report.by_kind().items():
        console.print(f"{kind.value} ({len(found)}): {found[0].action}")
        for anomaly in found[:SHOWN_PER_KIND]:
            console.print(f"  {anomaly.subject}: {anomaly.detail}", markup=False, highlight=False)
        if len(found) > SHOWN_PER_KIND:
            console.print(f"  … {len(found) - SHOWN_PER_KIND} more (--json lists all)")
    written = sum(t.written for t in report.tables.values())
    if report.dry_run:
        verb = "dry run, nothing changed"
    elif written:
        verb = f"imported {written} rows"
    else:
        verb = "nothing to import: every row was already there"
    console.print(f"{verb}: {report.seconds:.1f} s")
