"""`mana-credits packages`: the credit package catalogue."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mana_credits_core.errors import Conflict, InvalidInput
from mana_credits_core.purchases import Package

from .ids import full_id
from .runtime import (
    SHORT_ID,
    DatabaseUrl,
    JsonOutput,
    WideOutput,
    cell_id,
    console,
    open_services,
    print_json,
    print_table,
    reported,
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


class PackageExists(Conflict):
    """`packages add` of a name already on sale (without --force)."""

    code = "package_exists"


class NothingToChange(InvalidInput):
    """`packages update` without any change."""

    code = "nothing_to_change"


def show(packages: list[Package], json: bool, wide: bool = True, one: bool = False) -> None:
    """A table of `packages`; with `json`, a JSON array (`one`: the single object)."""
    if json:
        print_json(package_json(packages[0]) if one else [package_json(p) for p in packages])
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
    force: Annotated[
        bool, typer.Option("--force", help="Add it even if a package of this name is on sale.")
    ] = False,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Put a new package on sale.

    A name already on sale is refused unless --force (a second offer under one name).

    \b
    Example:
      mana-credits packages add --name Mega --credits 13000 --price 10000
    """

    async def work() -> Package:
        async with open_services(database_url) as services:
            on_sale = await services.purchases.packages(include_inactive=False)
            same = [p for p in on_sale if p.name.strip().casefold() == name.strip().casefold()]
            if same and not force:
                short = same[0].id[:SHORT_ID]
                raise PackageExists(
                    f"{same[0].name} ({short}) is on sale already; change it with"
                    f" mana-credits packages update {short}, or pass --force to add another"
                )
            return await services.purchases.add_package(
                name, credits, price, description=description, sort_order=sort_order
            )

    show([run(work)], json, one=True)


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

    changes = (name, credits, price, description, sort_order, active)
    if all(change is None for change in changes):
        with reported():
            raise NothingToChange(
                "package",
                "nothing to change, pass one or more of --name, --credits, --price,"
                " --description, --sort-order, --active/--inactive",
            )

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

    show([run(work)], json, one=True)


@app.command()
def deactivate(package_id: PackageId, database_url: DatabaseUrl = None) -> None:
    """Take a package off sale.

    It stays in the history of past purchases.

    \b
    Example:
      mana-credits packages deactivate 3f2c9a1b
    """

    async def work() -> tuple[Package, bool]:
        async with open_services(database_url) as services:
            found = await full_id(services, "package", package_id)
            every = await services.purchases.packages(include_inactive=True)
            if any(p.id == found and not p.active for p in every):
                return next(p for p in every if p.id == found), False
            return await services.purchases.update_package(found, active=False), True

    package, changed = run(work)
    if changed:
        console.print(f"{package.name} ({package.id}) is no longer on sale")
    else:
        console.print(f"{package.name} ({package.id}) was not on sale already; nothing changed")
