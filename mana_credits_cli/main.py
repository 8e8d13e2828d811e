"""The `mana-credits` command."""

from __future__ import annotations

import sys

import typer

from mana_credits_core.errors import CreditsError

from . import credits, db, dev, gifts, ledger, packages, report, serve, sync
from .runtime import print_error

app = typer.Typer(
    name="mana-credits",
    help="Prepaid credits: run the service and operate its ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(credits.app, name="credits")
app.add_typer(dev.app, name="dev")
app.add_typer(packages.app, name="packages")
app.add_typer(gifts.app, name="gifts")
app.add_typer(sync.app, name="sync")
app.add_typer(sync.billing, name="billing")
app.add_typer(ledger.app, name="ledger")
app.add_typer(report.app, name="report")
app.command("reconcile")(credits.reconcile)
app.command("serve")(serve.serve)


def run() -> None:
    # Commands report their own errors; one met outside `runtime.run` still gets one line.
    try:
        app()
    except CreditsError as exc:
        print_error(exc)
        sys.exit(1)
