"""The `mana-credits` command."""

from __future__ import annotations

import typer

from . import credits, db, dev, gifts, ledger, packages, report, serve, sync

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
    app()
