"""`mana-credits packages`: the credit package catalogue."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mana_credits_core.purchases import Package

from .ids import full_id
from .runtime import (
    DatabaseUrl,
    JsonOutput,
    WideOutput,
    cell_id,
    console,
    open_services,
    print_json,
    print_table,
    run,
)

app = typer.Typer(
    help="List and manage the credit packages on sale.", no_args_is_help=True, rich_markup_mode=None
)

PackageId = Annotated[
    str,
    typer.Argument(
        metavar="PACKAGE_ID", help="The package id, or its first characters as tables show."
    ),
]


def package_json(p: Package) -> dict[str, object]:
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "credits": p.credits,
        "priceEuroCents": p.price_euro_cents,
        "active": p.active,
        "sortOrder": p.sort_order,
    }


def show(packages: list[Package], json: bool, wide: bool = True) -> None:
    if json:
        print_json([package_json(p) for p in packages])
        return
    table = Table("id", "name", "credits", "price", "active", "order")
    for p in packages:
        table.add_row(
            cell_id(p.id, wide),
            p.name,
            str(p.credits),
            f"{p.price_euro_cents / 100:.2f} €",
            "yes" if p.active else "no",
            str(p.sort_order),
        )
    print_table(table, wide)


@app.command("list")
def list_packages(
    all_: Annotated[bool, typer.Option("--all", help="Include inactive packages.")] = False,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
    wide: WideOutput = False,
) -> None:
    """List the packages on sale (with --all, the inactive ones too).

    \b
    Example:
      mana-credits packages list --json
    """

    async def work() -> list[Package]:
        async with open_services(database_url, read_only=True) as services:
            return await services.purchases.packages(include_inactive=all_)

    show(run(work), json, wide)


@app.command()
def add(
    name: Annotated[str, typer.Option(help="Shown to buyers.")],
    credits: Annotated[int, typer.Option(help="Credits the buyer receives.")],
    price: Annotated[int, typer.Option("--price", help="Price in euro cents.")],
    description: Annotated[str | None, typer.Option(help="Shown under the name.")] = None,
    sort_order: Annotated[
        int | None, typer.Option(help="Position in the list (default: after the last).")
    ] = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Put a new package on sale.

    \b
    Example:
      mana-credits packages add --name Mega --credits 13000 --price 10000
    """

    async def work() -> Package:
        async with open_services(database_url) as services:
            return await services.purchases.add_package(
                name, credits, price, description=description, sort_order=sort_order
            )

    show([run(work)], json)


@app.command()
def update(
    package_id: PackageId,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    credits: Annotated[int | None, typer.Option(help="New credit amount.")] = None,
    price: Annotated[int | None, typer.Option("--price", help="New price in cents.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    sort_order: Annotated[int | None, typer.Option(help="New position.")] = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="On sale?")] = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Change a package; purchases already started keep their terms.

    \b
    Example:
      mana-credits packages update 3f2c9a1b --price 900
    """

    async def work() -> Package:
        async with open_services(database_url) as services:
            return await services.purchases.update_package(
                await full_id(services, "package", package_id),
                name=name,
                credits=credits,
                price_euro_cents=price,
                description=description,
                sort_order=sort_order,
                active=active,
            )

    show([run(work)], json)


@app.command()
def deactivate(package_id: PackageId, database_url: DatabaseUrl = None) -> None:
    """Take a package off sale.

    It stays in the history of past purchases.

    \b
    Example:
      mana-credits packages deactivate 3f2c9a1b
    """

    async def work() -> Package:
        async with open_services(database_url) as services:
            found = await full_id(services, "package", package_id)
            return await services.purchases.update_package(found, active=False)

    found = run(work)
    console.print(f"{found.name} ({found.id}) is no longer on sale")
