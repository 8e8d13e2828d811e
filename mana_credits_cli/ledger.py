"""`mana-credits ledger export`: the ledger as CSV or JSON lines, streamed."""

from __future__ import annotations

import csv
import enum
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from mana_credits_core.pricing import PRICING_KEY

from .credits import entry_json, utc
from .runtime import (
    DatabaseUrl,
    date_option,
    err_console,
    known_user,
    open_services,
    output_file,
    run,
)

if TYPE_CHECKING:
    from mana_credits_core.services import Services

app = typer.Typer(help="Export the ledger.", no_args_is_help=True, rich_markup_mode=None)

COLUMNS = [
    "id",
    "userId",
    "type",
    "status",
    "amount",
    "balanceBefore",
    "balanceAfter",
    "appId",
    "description",
    "metadata",
    "idempotencyKey",
    "createdAt",
    "completedAt",
]
# A priced entry's record (`pricing` in its metadata) in columns of their own, for a
# spreadsheet: the operation, what it cost and what the user had accrued after it
# (milli-credits). Empty for entries of an amount.
PRICED_COLUMNS = ["operation", "costMilli", "accruedMilli"]


# A spreadsheet opening the file runs a cell that starts with one of these as a formula
# (OWASP "CSV injection"): `=HYPERLINK(...)` in a description, `@SUM(...)` in an app id.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """`value` safe for a spreadsheet: a text cell that starts like a formula gets a
    leading `'`, which spreadsheets take as "this is text" and do not show. Numbers
    (amounts, balances) are not text and stay as they are: -30 is -30."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class Format(enum.StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


def format_for(output: Path | None) -> Format:
    """The format when `--format` is not given: CSV for a file named `*.csv` (any case),
    JSON lines for any other file and for stdout."""
    if output is not None and output.suffix.lower() == ".csv":
        return Format.CSV
    return Format.JSONL


@app.command()
def export(
    user: Annotated[
        str | None, typer.Option("--user", metavar="USER", help="One user's entries only.")
    ] = None,
    since: Annotated[datetime | None, date_option("Entries from this date/time on (UTC).")] = None,
    format: Annotated[
        Format | None,
        typer.Option(
            "--format",
            help="csv or jsonl; default: csv for an -o FILE ending in .csv, else jsonl.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Stream every ledger entry, oldest first, in constant memory.

    \b
    Examples:
      mana-credits ledger export -o ledger.csv
      mana-credits ledger export --format csv > ledger.csv
      mana-credits ledger export --user alice --since 2026-11-01 | jq .amount
    """
    chosen = format or format_for(output)
    count = run(lambda: _export(user, utc(since), chosen, database_url, output))
    if output is not None:
        err_console.print(f"exported {count} entries to {output}", markup=False, highlight=False)


async def _export(
    user: str | None,
    since: datetime | None,
    format: Format,
    database_url: str | None,
    output: Path | None,
) -> int:
    async with open_services(database_url, read_only=True) as services:
        if user is not None:
            await known_user(services, user)  # a typo is an error, not an empty export
        # Opened once the store and the user are known: a refusal leaves no empty file.
        with output_file(output) if output is not None else _stdout() as out:
            return await _write(services, out, user, since, format, output is not None)


async def _write(
    services: Services,
    out: TextIO,
    user: str | None,
    since: datetime | None,
    format: Format,
    to_file: bool,
) -> int:
    columns = COLUMNS + PRICED_COLUMNS
    writer = csv.DictWriter(out, fieldnames=columns) if format == Format.CSV else None
    if writer is not None:
        writer.writeheader()
    count = 0
    # A spinner for people writing to a file on a terminal; nothing extra elsewhere (a
    # transient display off a terminal leaves a blank line).
    with Progress(
        SpinnerColumn(), TextColumn("{task.completed} entries"), console=err_console,
        transient=True, disable=not (to_file and err_console.is_terminal),
    ) as bar:  # fmt: skip
        task = bar.add_task("export")
        async for entry in services.credits.export(user_id=user, since=since):
            row = entry_json(entry)
            if writer is not None:
                row["metadata"] = None if entry.metadata is None else json.dumps(entry.metadata)
                row |= _priced(entry.metadata)
                writer.writerow({key: csv_cell(value) for key, value in row.items()})
            else:
                out.write(json.dumps(row, separators=(",", ":")) + "\n")
            count += 1
            if count % 1000 == 0:
                bar.update(task, completed=count)
    return count


def _priced(metadata: dict[str, object] | None) -> dict[str, object]:
    record = (metadata or {}).get(PRICING_KEY)
    if not isinstance(record, dict):
        return dict.fromkeys(PRICED_COLUMNS)
    return {name: record.get(name) for name in PRICED_COLUMNS}


class _stdout:
    """stdout as a context manager that is not closed on exit."""

    def __enter__(self) -> TextIO:
        return sys.stdout

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()
