"""Shared plumbing for commands: settings, running a coroutine, printing errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO, TypeVar

import typer
from rich.console import Console

from mana_credits_core.errors import CreditsError, InvalidInput, StoreUnavailable, UserNotFound

if TYPE_CHECKING:
    from rich.table import Table

    from mana_credits_adapters.settings import Settings
    from mana_credits_core.ledger import Balance
    from mana_credits_core.services import Services

T = TypeVar("T")

# One line per message, however narrow the terminal: output is read by scripts and grep.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def not_blank(value: str) -> str:
    """A Typer callback for ids (USER, ...): an empty one is a usage error."""
    if value is not None and not value.strip():
        raise typer.BadParameter("must not be empty")
    return value


# What a date option (`--since`) takes, said when it gets anything else.
DATE_FORMAT = "pass YYYY-MM-DD or an ISO 8601 time such as 2026-11-01T12:00:00Z"


def moment(text: str) -> datetime:
    """A Typer parser for options that take a date or time (`--since`): an ISO 8601
    date or date-time, naive or with an offset (`utc` makes naive ones UTC). Anything
    else is a usage error saying what to pass; Click names the option in front of it."""
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is not None:
            moment.astimezone(UTC)  # raises OverflowError past year 1 or 9999 in UTC
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date, {DATE_FORMAT}") from None
    except OverflowError:
        raise typer.BadParameter(
            f"{text!r} is out of range in UTC, pass a date from 0001-01-02 to 9999-12-30"
        ) from None
    return moment


def date_option(help: str) -> Any:
    """A `--since`-style option parsed by `moment`, shown as `--since DATE`."""
    return typer.Option(metavar="DATE", help=help, parser=moment)


DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        envvar="DATABASE_URL",
        help=(
            "Store URL (postgresql://user:password@host/db, sqlite:////absolute/path.db);"
            " default: the embedded SQLite file."
        ),
        show_envvar=True,
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
WideOutput = Annotated[
    bool,
    typer.Option("--wide", help="Show ids in full (the table may be wider than the terminal)."),
]
UserArg = Annotated[str, typer.Argument(metavar="USER", help="The user id.", callback=not_blank)]
Operator = Annotated[
    str | None,
    typer.Option(
        metavar="NAME", help="Who does this, recorded on the entry (default: your login name)."
    ),
]


class CannotWrite(CreditsError):
    """An output file that cannot be written (missing folder, a folder, no permission)."""

    code = "cannot_write"


def output_file(path: Path) -> TextIO:
    """`path` opened for writing text; `CannotWrite` naming it and the cause otherwise."""
    try:
        return path.open("w", newline="", encoding="utf-8")
    except IsADirectoryError as exc:
        raise CannotWrite(f"{path} is a folder, pass a file name (-o {path}/export.csv)") from exc
    except FileNotFoundError as exc:
        if path.parent.is_dir():
            raise CannotWrite(f"cannot write {path}, pick another path") from exc
        raise CannotWrite(
            f"cannot write {path}: folder {path.parent} does not exist, create it or pick another"
        ) from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CannotWrite(f"cannot write {path}: {reason.lower()}, pick another path") from exc


def settings_for(database_url: str | None) -> Settings:
    """The settings, `database_url` (given explicitly) winning over `DATABASE_URL`.

    Raises `InvalidSetting` (printed by `reported`) for a value that does not parse.
    """
    from mana_credits_adapters.settings import Settings  # pydantic: only when used

    return Settings(DATABASE_URL=database_url) if database_url else Settings()


@asynccontextmanager
async def open_services(
    database_url: str | None, *, read_only: bool = False
) -> AsyncIterator[Services]:
    """The services on the store named by `--database-url` / `DATABASE_URL`.

    The database is touched first, so an unreachable one is one line naming it.
    `read_only` marks commands that only read: they write nothing. They never create a
    store (a missing SQLite file is `no_database`, and no folder is made either), never
    migrate it (a schema behind the code's is `SchemaOutdated`) and never stock the
    default catalogue. Other commands migrate the embedded default, as the server does.
    """
    from mana_credits_adapters.bootstrap import bootstrap

    from .db import check_schema  # the schema is the migrations' business

    settings = settings_for(database_url)
    async with bootstrap(settings, create=not read_only, connect=True) as services:
        if read_only:
            await check_schema(services.store, settings.effective_database_url)
        yield services


# The core names its fields as the HTTP API does; people typed these instead.
FIELD_NAMES = {
    "userId": "USER",
    "packageId": "PACKAGE_ID",
    "purchaseId": "PURCHASE_ID",
    "giftId": "GIFT",
    "gift": "GIFT",
    "name": "--name",
    "description": "--description",
    "credits": "--credits",
    "priceEuroCents": "--price",
    "sortOrder": "--sort-order",
    "reason": "--reason",
    "appId": "--app",
    "limit": "--limit",
    "idempotencyKey": "--idempotency-key",
}


def run(work: Callable[[], Awaitable[T]], fields: dict[str, str] | None = None) -> T:
    """Run `work`; a core or setup error becomes `error: <code>: <message>`, exit code 1.

    `fields` renames the core's field names in messages for this command (on top of
    `FIELD_NAMES`), e.g. `{"description": "--reason"}` where the reason is stored as
    the entry's description.
    """
    with reported(fields):
        return asyncio.run(_call(work))


@contextmanager
def reported(fields: dict[str, str] | None = None) -> Iterator[None]:
    """Print a `CreditsError` (setup faults included) as one line on stderr; exit 1."""
    try:
        yield
    except InvalidInput as exc:
        names = FIELD_NAMES | (fields or {})
        if exc.field in names and exc.message.startswith(f"{exc.field} "):
            exc.message = names[exc.field] + exc.message[len(exc.field) :]
        print_error(exc)
        raise typer.Exit(1) from exc
    except CreditsError as exc:
        print_error(exc)
        raise typer.Exit(1) from exc


def single_line(limit: int) -> Callable[[str], str]:
    """A Typer callback for a free text option (`--reason`): not blank, one line, at
    most `limit` characters; a violation is a usage error naming the option."""

    def check(value: str) -> str:
        if value is None:
            return value
        if not value.strip():
            raise typer.BadParameter("must not be empty, say why")
        if "\n" in value or "\r" in value:
            raise typer.BadParameter("must be a single line")
        if len(value) > limit:
            raise typer.BadParameter(f"must be at most {limit} characters (got {len(value)})")
        return value

    return check


def print_error(exc: CreditsError) -> None:
    message = exc.message
    if isinstance(exc, StoreUnavailable) and exc.__cause__ is not None:
        # The server keeps the driver's words out of its answers; an operator wants them.
        from mana_credits_adapters.bootstrap import failure_cause

        message = f"{message} ({failure_cause(exc.__cause__)}), try again"
    err_console.print(
        f"error: {exc.code}: {message}", markup=False, highlight=False, soft_wrap=True
    )


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def operator_name(given: str | None) -> str:
    """`--operator`, else the login name; an error if neither is known."""
    if given is not None:
        return given
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError) as exc:
        raise InvalidInput("operator", "no login name to record, pass --operator NAME") from exc


# What to do about a user id never seen, after "no such user X" (`known_user`, and
# `credits debit`, which refuses the user with its own code).
CHECK_USER_ID = "check the id (mana-credits credits top lists users)"


NewUser = Annotated[
    bool,
    typer.Option(
        "--new-user",
        help="Act on a user id this service has never seen (without it such an id is "
        "refused: most are typos).",
    ),
]


async def creditable(
    services: Services, user_id: str, new_user: bool, doing: str = "credit"
) -> None:
    """Refuse to `doing` (credit, gift Cloud Sync to) a user never seen unless
    `new_user`: what is given to a mistyped id belongs to no one. Raises
    `UserNotFound` saying what to do."""
    if new_user:
        return
    try:
        await known_user(services, user_id)
    except UserNotFound as exc:
        raise UserNotFound(
            f"{exc.message}, or pass --new-user to {doing} an id never seen", **exc.details
        ) from exc


async def known_user(services: Services, user_id: str) -> Balance:
    """USER's balance; a user never seen is an error, and nothing is created."""
    try:
        return await services.credits.existing_balance(user_id)
    except UserNotFound as exc:
        raise UserNotFound(f"{exc.message}, {CHECK_USER_ID}", **exc.details) from exc


SHORT_ID = 8


def cell_id(value: str | None, wide: bool) -> str:
    """An id for a table cell: shortened to its first characters unless `--wide`."""
    if value is None:
        return "-"
    return value if wide or len(value) <= SHORT_ID + 1 else f"{value[:SHORT_ID]}…"


def print_table(table: Table, wide: bool = False, shortened: bool = True) -> None:
    """A table whose cells are never cut: on a terminal long cells wrap (fold) within
    its width; elsewhere (pipes, files) and with `--wide` the table takes the width it
    needs. Only ids are shortened, to `SHORT_ID` characters, by `cell_id`."""
    for column in table.columns:
        column.overflow = "fold"
        if column.header == "id":
            column.no_wrap = True
            column.min_width = SHORT_ID + 1  # the short id and its "…"
    if wide or not console.is_terminal:
        from rich.measure import Measurement

        natural = Measurement.get(console, console.options.update_width(100_000), table)
        # A console of the table's own width: `print(width=)` never exceeds the terminal.
        Console(width=max(console.width, natural.maximum), soft_wrap=True).print(table)
    else:
        console.print(table)
    if shortened and not wide and table.row_count:
        err_console.print("ids shortened: --wide or --json shows them in full", style="dim")
