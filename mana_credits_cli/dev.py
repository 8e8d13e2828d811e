"""`mana-credits dev`: helpers for the embedded default."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from .ids import full_id
from .runtime import DatabaseUrl, console, err_console, not_blank, open_services, run


class Role(enum.StrEnum):
    USER = "user"
    ADMIN = "admin"


app = typer.Typer(
    help="Development helpers for the embedded default.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command()
def token(
    user: Annotated[
        str, typer.Option(metavar="USER", help="The user id (`sub` claim).", callback=not_blank)
    ],
    email: Annotated[str | None, typer.Option(metavar="EMAIL", help="The `email` claim.")] = None,
    role: Annotated[Role, typer.Option(help="The `role` claim.")] = Role.USER,
    name: Annotated[str | None, typer.Option(help="The `name` claim.")] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.", min=1)] = 3600,
) -> None:
    """Print a token that the embedded default server accepts.

    \b
    Example:
      TOKEN=$(mana-credits dev token --user alice --email alice@example.com)
    """
    from mana_credits_adapters.identity.dev import SigningKey
    from mana_credits_adapters.settings import Settings

    settings = Settings()
    if not settings.dev_identity:
        err_console.print(
            "error: config: MANA_AUTH_URL is set, so tokens come from the auth service",
            markup=False,
        )
        raise typer.Exit(1)
    key = SigningKey.load_or_create(settings.home)
    typer.echo(
        key.mint(
            user, issuer=settings.issuer, email=email, role=role.value, name=name, ttl_seconds=ttl
        )
    )


@app.command()
def pay(
    purchase_id: Annotated[
        str, typer.Argument(metavar="PURCHASE_ID", help="The purchase to pay for.")
    ],
    database_url: DatabaseUrl = None,
) -> None:
    """Pay a pending purchase with the dev gateway.

    The buyer is credited exactly as a Stripe `payment_intent.succeeded` webhook would
    credit them.

    \b
    Example:
      mana-credits dev pay 0b6d2c4e
    """

    from mana_credits_adapters.payments.dev import dev_payment

    async def work() -> str:
        async with open_services(database_url) as services:
            purchase = await services.purchases.get(
                await full_id(services, "purchase", purchase_id)
            )
            return await services.purchases.handle(dev_payment(purchase))

    console.print(f"{purchase_id}: {run(work)}")
