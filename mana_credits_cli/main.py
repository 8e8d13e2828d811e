"""The `mana-credits` command.

Subcommands are imported when they run, not when the command starts: `--help`,
`--version` and shell completion stay fast, and a command loads only what it uses
(the database driver, the migrations or the HTTP server, never all of them).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

# Typer carries its own copy of Click; its exceptions are only importable from there.
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperCommand, TyperGroup

# name: (module, attribute, one-line help shown by `mana-credits --help`). The line
# repeats the command's own first line; tests/cli/test_startup.py keeps them equal.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "db": ("db", "app", "Create and migrate the database schema."),
    "credits": ("credits", "app", "Read balances, rank users and correct the ledger."),
    "purchases": ("purchases", "app", "Credit purchases: list, inspect, refund."),
    "dev": ("dev", "app", "Development helpers for the embedded default."),
    "packages": ("packages", "app", "List and manage the credit packages on sale."),
    "prices": ("prices", "app", "The price list of paid operations: list, set, retire, history."),
    "gifts": ("gifts", "app", "Gift codes: list, inspect, cancel, expire."),
    "sync": ("sync", "app", "Cloud Sync subscriptions: status, admin gifts."),
    "billing": ("sync", "billing", "The Cloud Sync billing run."),
    "ledger": ("ledger", "app", "Export the ledger."),
    "report": ("report", "app", "Reports."),
    "users": ("users", "app", "A person's data: export it, delete the account."),
    "console": ("console", "app", "The operator console: single-use sign-in links."),
    "reconcile": (
        "reconcile",
        "reconcile",
        "Check every ledger invariant; exit 1 on drift.",
    ),
    "serve": (
        "serve",
        "serve",
        "Start the server. With nothing configured: the embedded default (SQLite, dev identity).",
    ),
}


def load_command(name: str) -> Any:
    """The real click command behind `name`, importing its module now."""
    module_name, attribute, _summary = COMMANDS[name]
    target = getattr(importlib.import_module(f"{__package__}.{module_name}"), attribute)
    command: Any
    from .helptext import conventional

    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)  # a group even with one subcommand
    else:
        # Shell completion is installed from the top level only.
        single = typer.Typer(rich_markup_mode=None, add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return conventional(command)


class LazyGroup(TyperGroup):
    """A group whose subcommands are imported on first use; its own help lists them
    from `COMMANDS` without importing any."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        if self._listing:
            return TyperCommand(cmd_name, help=COMMANDS[cmd_name][2])
        return load_command(cmd_name)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's entry point, with a person's mistakes as one line and exit code 1.

        Click's own answer to a bad option is a box of several lines and exit code 2;
        ours is `error: usage: <click's message>, see mana-credits <command> --help`.
        `--help` and `--version` still exit 0.
        """
        try:
            result = super().main(
                args, PROG_NAME, complete_var, False, windows_expand_args, **extra
            )
        except NoArgsIsHelpError as exc:
            if not standalone_mode:
                raise
            exc.show()  # a group without its subcommand: the list is the useful answer
            sys.exit(exc.exit_code)
        except UsageError as exc:
            if not standalone_mode:
                raise
            where = exc.ctx.command_path if exc.ctx is not None else PROG_NAME
            one_line(f"error: usage: {_sentence(exc.format_message())}, see {where} --help")
            sys.exit(1)
        except ClickException as exc:
            if not standalone_mode:
                raise
            one_line(f"error: invalid_input: {_sentence(exc.format_message())}")
            sys.exit(1)
        except typer.Abort:
            if not standalone_mode:
                raise
            one_line("error: aborted: nothing was changed by the step that was interrupted")
            sys.exit(1)
        if not standalone_mode:
            return result
        # `--help`, `--version` and `typer.Exit(n)` come back as their exit code.
        sys.exit(result if isinstance(result, int) else 0)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


PROG_NAME = "mana-credits"


def one_line(message: str) -> None:
    typer.echo(message, err=True)


def _sentence(message: str) -> str:
    """Click's message on one line, without its closing full stop."""
    # Typer's parameter checks prefix pydantic's wording ("Value error, ...").
    return " ".join(message.replace("Value error, ", "").split()).rstrip(".")


def version() -> str:
    """The installed distribution's version, or the source tree's."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("mana-credits")
    except PackageNotFoundError:
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            project = tomllib.loads(pyproject.read_text())["project"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"
        return f"{project['version']} (source tree)"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"mana-credits {version()}")
        raise typer.Exit()


app = typer.Typer(
    name="mana-credits",
    help="Prepaid credits: run the service and operate its ledger.",
    cls=LazyGroup,
    rich_markup_mode=None,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_show_version,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Prepaid credits: run the service and operate its ledger."""


def run() -> None:
    # Commands report their own errors; one met outside `runtime.run` still gets one line.
    from mana_credits_core.errors import CreditsError

    try:
        app()
    except CreditsError as exc:
        from .runtime import print_error

        print_error(exc)
        sys.exit(1)
