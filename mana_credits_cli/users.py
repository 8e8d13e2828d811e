"""`mana-credits users`: everything held about a person (export), account deletion."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from mana_credits_core.errors import UserNotFound
from mana_credits_core.services import UserDeleted, UserRecords

from .runtime import DatabaseUrl, JsonOutput, console, err_console, open_services, print_json, run

app = typer.Typer(
    help="A person's data: export it, delete the account.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

UserArg = Annotated[str, typer.Argument(metavar="USER_ID", help="The user's id.")]


def as_json(value: Any) -> Any:
    """A record as JSON: camelCase keys, ISO-8601 times, enum values, every field."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_camel(f.name): as_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@app.command()
def export(
    user: UserArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print everything held about USER_ID as one JSON document (GDPR art. 15/20).

    Balance, purchases, gifts created and received, redemption attempts, the Cloud Sync
    subscription, reservations, usage per app and day, priced usage per operation and
    day (calls, units, cost in milli-credits), the credit lots (source, amount,
    remaining, priority, expiry) and the whole ledger, oldest first; the ledger is
    streamed page by page, so a long one needs no memory. A user nothing is held about
    is an error.

    \b
    Examples:
      mana-credits users export alice > alice.json
      mana-credits users export alice -o alice.json
    """
    with output.open("w") if output else _stdout() as out:
        count = run(lambda: _export(out, user, database_url))
    if output is not None:
        err_console.print(f"exported {user} with {count} ledger entries to {output}")


async def _export(out: TextIO, user: str, database_url: str | None) -> int:
    async with open_services(database_url, read_only=True) as services:
        records = await services.users.records(user)
        if _empty(records):
            raise UserNotFound(f"nothing is held about {user}, check the id")
        head = json.dumps(as_json(records), indent=2)
        out.write(head[: head.rindex("}")].rstrip() + ',\n  "ledger": [')
        count = 0
        async for entry in services.users.ledger(user):
            out.write(("," if count else "") + "\n    " + json.dumps(as_json(entry)))
            count += 1
        out.write("\n  ]\n}\n" if count else "]\n}\n")
    return count


def _empty(records: UserRecords) -> bool:
    return records.balance is None and not any(
        (
            records.purchases,
            records.gifts_created,
            records.redemptions,
            records.subscription,
            records.reservations,
            records.usage,
            records.lots,
            records.operation_usage,
        )
    )


@app.command()
def delete(
    user: UserArg,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: the deletion cannot be undone.")
    ] = False,
    email: Annotated[
        str | None,
        typer.Option(help="The person's e-mail address: also clears gifts still addressed to it."),
    ] = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Delete USER_ID's account data (GDPR art. 17); the accounts stay, pseudonymized.

    In one transaction: active gifts are cancelled and reservations released, the
    balance left is forfeited (a `forfeit` entry), usage statistics, reservations and
    the payment customer are deleted, gift messages and e-mail addresses cleared, and
    the retained accounting rows carry a random pseudonym instead of the id (see
    docs/privacy.md). Running it again does nothing.

    \b
    \b
    Example:
      mana-credits users delete alice --yes
    """
    if not yes:
        err_console.print(
            f"error: confirmation_required: deleting {user}'s data cannot be undone,"
            " pass --yes to confirm",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1)

    async def work() -> UserDeleted:
        async with open_services(database_url) as services:
            return await services.users.delete(user, email=email)

    done = run(work)
    if json:
        print_json({"userId": user} | as_json(done))
    elif done.deleted_count == 0:
        console.print(f"nothing held about {user}: nothing deleted", markup=False)
    else:
        console.print(
            f"deleted {user}: {done.deleted_count} rows deleted or pseudonymized,"
            f" {done.forfeited} credits forfeited, {done.gifts_cancelled} gifts cancelled",
            markup=False,
            highlight=False,
        )


class _stdout:
    """stdout as a context manager that is not closed on exit."""

    def __enter__(self) -> TextIO:
        return sys.stdout

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()
