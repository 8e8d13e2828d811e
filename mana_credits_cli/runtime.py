"""Shared plumbing for commands: settings, running a coroutine, printing errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from mana_credits_adapters.settings import Settings
from mana_credits_core.errors import CreditsError, StoreUnavailable

if TYPE_CHECKING:
    from mana_credits_core.services import Services

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        help=(
            "Store URL (postgresql://user:password@host/db, sqlite:////absolute/path.db);"
            " default: the embedded SQLite file."
        ),
        show_envvar=True,
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def settings_for(database_url: str | None) -> Settings:
    """The settings, `database_url` (given explicitly) winning over `DATABASE_URL`.

    Raises `InvalidSetting` (printed by `reported`) for a value that does not parse.
    """
    return Settings(DATABASE_URL=database_url) if database_url else Settings()


@asynccontextmanager
async def open_services(
    database_url: str | None, *, read_only: bool = False
) -> AsyncIterator[Services]:
    """The services on the store named by `--database-url` / `DATABASE_URL`.

    The database is touched first, so an unreachable one is one line naming it.
    `read_only` marks commands that only read: they never create a store (a missing
    SQLite file is `no_database`, and no folder is made either).
    """
    from mana_credits_adapters.bootstrap import bootstrap

    settings = settings_for(database_url)
    async with bootstrap(settings, create=not read_only, connect=True) as services:
        yield services


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run `work`; a core or setup error becomes `error: <code>: <message>`, exit code 1."""
    with reported():
        return asyncio.run(_call(work))


@contextmanager
def reported() -> Iterator[None]:
    """Print a `CreditsError` (setup faults included) as one line on stderr; exit 1."""
    try:
        yield
    except CreditsError as exc:
        print_error(exc)
        raise typer.Exit(1) from exc


def print_error(exc: CreditsError) -> None:
    message = exc.message
    if isinstance(exc, StoreUnavailable) and exc.__cause__ is not None:
        # The server keeps the driver's words out of its answers; an operator wants them.
        from mana_credits_adapters.sql.target import failure_cause

        message = f"{message} ({failure_cause(exc.__cause__)}), try again"
    err_console.print(
        f"error: {exc.code}: {message}", markup=False, highlight=False, soft_wrap=True
    )


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))
