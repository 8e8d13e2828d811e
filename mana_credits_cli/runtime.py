"""Shared plumbing for commands: settings, running a coroutine, printing errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from mana_credits_adapters.settings import Settings
from mana_credits_core.errors import CreditsError

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
        help="Store URL (postgresql://…, sqlite:///…); default: the embedded SQLite file.",
        show_envvar=True,
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def settings_for(database_url: str | None) -> Settings:
    # Explicit arguments win over the environment, as with the server.
    return Settings(DATABASE_URL=database_url) if database_url else Settings()


@asynccontextmanager
async def open_services(
    database_url: str | None, *, read_only: bool = False
) -> AsyncIterator[Services]:
    """The services on the store named by `--database-url` / `DATABASE_URL`.

    `read_only` marks commands that only read: they must never create a store.
    """
    from mana_credits_adapters.bootstrap import bootstrap

    async with bootstrap(settings_for(database_url)) as services:
        yield services


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run `work`; a core error becomes `error: <code>: <message>` and exit code 1."""
    try:
        return asyncio.run(_call(work))
    except CreditsError as exc:
        err_console.print(f"error: {exc.code}: {exc.message}", markup=False, highlight=False)
        raise typer.Exit(1) from exc


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))
