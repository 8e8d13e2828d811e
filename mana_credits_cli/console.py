"""`mana-credits console`: sign-in links to the operator console (`/console`)."""

from __future__ import annotations

from typing import Annotated

import typer

from mana_credits_core.console import LINK_TTL_SECONDS

from .runtime import DatabaseUrl, JsonOutput, console, print_json, run, settings_for

app = typer.Typer(
    help="The operator console: single-use sign-in links.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command()
def link(
    operator: Annotated[
        str,
        typer.Option(metavar="NAME", help="Who signs in; recorded on every change they make."),
    ],
    base_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL", help="The server's address as operators reach it (default: BASE_URL)."
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Print a single-use sign-in URL for the console, valid 10 minutes.

    Only the token's hash is stored; the link signs in once, then is refused.

    \b
    Example:
      mana-credits console link --operator alice --base-url https://credits.example.com
    """
    from mana_credits_adapters.bootstrap import bootstrap

    async def work() -> tuple[str, str]:
        settings = settings_for(database_url)
        root = (base_url or settings.base_url).rstrip("/")
        async with bootstrap(settings, connect=True) as services:
            issued = await services.console.issue_link(operator, LINK_TTL_SECONDS)
        return f"{root}/console/link/{issued.token}", issued.expires_at.isoformat()

    url, expires_at = run(work, {"operator": "--operator"})
    if json:
        print_json({"url": url, "operator": operator.strip(), "expiresAt": expires_at})
    else:
        console.print(url, soft_wrap=True, highlight=False)
