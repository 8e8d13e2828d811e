"""`mana-credits prices`: the price list of the suite's paid operations (docs/pricing.md).

Prices are given and shown as credits with up to three decimals ("0.1"), never as
floats; `--json` adds the exact integer in milli-credits (1 credit = 1,000).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer
from rich.table import Table

from mana_credits_core.errors import InvalidInput
from mana_credits_core.pricing import (
    Price,
    PriceAction,
    PriceChange,
    format_credits,
    price_text,
    unit_text,
)
from mana_credits_core.services.prices import MAX_CHANGES, PriceNotFound
from mana_credits_core.validation import MAX_REASON

from .runtime import (
    DatabaseUrl,
    JsonOutput,
    Operator,
    console,
    open_services,
    operator_name,
    print_json,
    print_table,
    run,
    single_line,
)

app = typer.Typer(
    help="The price list of paid operations: list, set, retire, history.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

OperationArg = Annotated[
    str, typer.Argument(metavar="OPERATION", help="The operation id, e.g. ai_chat_gpt4.")
]
Reason = Annotated[
    str | None,
    typer.Option(
        "--reason",
        metavar="TEXT",
        help=f"Why: recorded with the change (one line, ≤ {MAX_REASON} characters).",
        callback=single_line(MAX_REASON),
    ),
]
# The core names its fields as the HTTP API does.
PRICE_FIELDS = {
    "operation": "OPERATION",
    "price": "PRICE",
    "unit": "--unit",
    "unitSize": "--unit-size",
    "operator": "--operator",
}


def price_of(price: Price) -> str:
    """ "0.2 credits per 10 items" """
    return price_text(price.price_milli, price.unit, price.unit_size)


def state_before(change: PriceChange, after: Price) -> Price | None:
    """The entry as `change` found it, from the change's `before` and old price, other
    fields as `after` (the entry the change left); None for a created entry."""
    b = change.before
    if change.old_price_milli is None or not b:
        return None
    unit, size = b.get("unit"), b.get("unitSize")
    return replace(
        after,
        app_id=str(b.get("appId", after.app_id)),
        name=str(b.get("name", after.name)),
        description=str(b.get("description", after.description)),
        unit=unit if isinstance(unit, str) else None,
        unit_size=size if isinstance(size, int) else 1,
        price_milli=change.old_price_milli,
    )


def change_text(change: PriceChange, new: Price) -> str:
    """What a change made of `new`'s entry: the price before and after (with their
    units) and, where they moved, app and name; e.g. "0.2 credits per 10 items -> 0.2
    credits per call", "2 credits per call (app chat -> picture)"."""
    now = price_of(new)
    old = state_before(change, new)
    if old is None:
        return f"{now} (new)"
    was = price_of(old)
    moved = [
        f"{label} {before} -> {after}"
        for label, before, after in (("app", old.app_id, new.app_id), ("name", old.name, new.name))
        if before != after
    ]
    if old.description != new.description:
        moved.append("description changed")
    if change.before.get("retired"):
        moved.append("priced again")
    price = now if was == now else f"{was} -> {now}"
    return price + (f" ({', '.join(moved)})" if moved else "")


def states_after(changes: list[PriceChange], prices: list[Price]) -> list[Price | None]:
    """Each change's entry as the change left it, for `changes` newest first: the
    newest change of an operation left it as it is now (`prices`, retired included);
    an older one left it as the next newer change found it (`state_before`). None
    where neither is known."""
    state: dict[str, Price | None] = {p.operation: p for p in prices}
    found: list[Price | None] = []
    for change in changes:
        after = state.get(change.operation)
        if after is not None and change.new_price_milli is not None:
            after = replace(after, price_milli=change.new_price_milli)  # its own record
        found.append(after)
        state[change.operation] = None if after is None else state_before(change, after)
    return found


def price_json(price: Price) -> dict[str, object]:
    """A price for `--json`: `price` in credits as exact text, `priceMilli` in
    milli-credits per `unitSize` units of `unit` (null: per call)."""
    return {
        "operation": price.operation,
        "appId": price.app_id,
        "name": price.name,
        "description": price.description,
        "price": format_credits(price.price_milli),
        "priceMilli": price.price_milli,
        "unit": price.unit,
        "unitSize": price.unit_size,
        "active": price.active,
        "createdAt": price.created_at.isoformat(),
        "updatedAt": price.updated_at.isoformat(),
        "retiredAt": None if price.retired_at is None else price.retired_at.isoformat(),
    }


def change_json(change: PriceChange) -> dict[str, object]:
    """A change for `--json`: old and new price as credits text and milli-credits
    (null where there was or is none)."""
    old, new = change.old_price_milli, change.new_price_milli
    return {
        "id": change.id,
        "operation": change.operation,
        "action": change.action.value,
        "oldPrice": None if old is None else format_credits(old),
        "newPrice": None if new is None else format_credits(new),
        "oldPriceMilli": old,
        "newPriceMilli": new,
        "operator": change.operator,
        "reason": change.reason,
        "at": change.at.isoformat(),
        "before": change.before,
    }


def credits_or_dash(milli: int | None) -> str:
    return "-" if milli is None else format_credits(milli)


def known(exc: PriceNotFound, operation: str) -> PriceNotFound:
    """`PriceNotFound` saying where the operations are listed."""
    return PriceNotFound(
        f"no operation {operation} in the price list, check the id"
        " (mana-credits prices list --all lists them)",
        **exc.details,
    )


@app.command("list")
def list_prices(
    all_: Annotated[bool, typer.Option("--all", help="Include retired operations.")] = False,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """List the prices (with --all, the retired ones too).

    By app, then operation. Prices are credits (1 credit = 1 euro cent) with up to three
    decimals.

    \b
    Example:
      mana-credits prices list --json
    """

    async def work() -> list[Price]:
        async with open_services(database_url, read_only=True) as services:
            return await services.prices.list(include_retired=all_)

    found = run(work)
    if json:
        print_json([price_json(p) for p in found])
        return
    columns = ["operation", "app", "name", "price", "unit"]
    table = Table(*columns, "status") if all_ else Table(*columns)
    for p in found:
        per = unit_text(p.unit, p.unit_size)
        cells = [p.operation, p.app_id, p.name, format_credits(p.price_milli), per]
        table.add_row(*cells, *(["active" if p.active else "retired"] if all_ else []))
    print_table(table, shortened=False)
    if not found:
        console.print("the price list is empty")


# "-1" reaches the core's rules as a price (one clear message) rather than as an option.
PRICE_SETTINGS = {"ignore_unknown_options": True}


@app.command("set", context_settings=PRICE_SETTINGS)
def set_price(
    operation: OperationArg,
    price: Annotated[
        str,
        typer.Argument(
            metavar="PRICE", help="Credits per call or per --unit-size units: 0.1, 5, 0.25."
        ),
    ],
    app_id: Annotated[
        str | None,
        typer.Option("--app", metavar="APP", help="The app the operation belongs to."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Shown to people, e.g. 'Chat (GPT-4)'.")] = None,
    description: Annotated[str | None, typer.Option(help="What one unit is.")] = None,
    unit: Annotated[
        str | None,
        typer.Option(
            metavar="UNIT",
            help='What is counted, one word in the singular (item, month); "" for per call.',
        ),
    ] = None,
    unit_size: Annotated[
        int | None,
        typer.Option("--unit-size", metavar="N", help="PRICE is for N units (default 1)."),
    ] = None,
    reason: Reason = None,
    operator: Operator = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Set OPERATION's price: add, change or price again.

    OPERATION is priced at PRICE credits. A new operation needs --app and --name. For a
    known one the options not given stay as they are. The change is recorded with the
    operator, the reason and the price before (prices history); a price that changes
    nothing records nothing. Debits already made keep the price they were made at.

    \b
    Examples:
      mana-credits prices set ai_chat_gpt4 4.5 --reason "cheaper model contract"
      mana-credits prices set ai_translate 0.2 --app notes --name Translation
      mana-credits prices set bulk_import 0.25 --unit item --unit-size 10
    """

    async def work() -> tuple[Price, PriceChange | None]:
        who = operator_name(operator)
        async with open_services(database_url) as services:
            try:
                return await services.prices.set(
                    operation,
                    price,
                    operator=who,
                    app_id=app_id,
                    name=name,
                    description=description,
                    unit=unit,
                    unit_size=unit_size,
                    reason=reason,
                )
            except InvalidInput as exc:
                if exc.field in ("appId", "name") and exc.message.startswith("a new operation"):
                    raise InvalidInput(
                        exc.field,
                        f"{operation} is not in the price list yet, a new operation needs"
                        " --app APP and --name NAME",
                    ) from exc
                raise

    new, change = run(work, PRICE_FIELDS)
    if json:
        print_json(
            {"price": price_json(new), "change": None if change is None else change_json(change)}
        )
        return
    if change is None:
        console.print(f"{new.operation}: {price_of(new)}, unchanged", markup=False, highlight=False)
        return
    console.print(
        f"{new.operation} ({new.app_id}, {new.name}) {change.action.value}:"
        f" {change_text(change, new)}",
        markup=False,
        highlight=False,
    )


@app.command()
def retire(
    operation: OperationArg,
    reason: Reason = None,
    operator: Operator = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Take OPERATION off the price list.

    Debits and reservations naming it are refused from now on. It stays listed (prices list
    --all) for the entries that used it; prices set prices it again. Retiring a retired
    operation changes nothing.

    \b
    Example:
      mana-credits prices retire ai_chat_gpt4 --reason "model withdrawn"
    """

    async def work() -> tuple[Price, PriceChange | None]:
        who = operator_name(operator)
        async with open_services(database_url) as services:
            try:
                return await services.prices.retire(operation, operator=who, reason=reason)
            except PriceNotFound as exc:
                raise known(exc, operation) from exc

    price, change = run(work, PRICE_FIELDS)
    if json:
        print_json(
            {"price": price_json(price), "change": None if change is None else change_json(change)}
        )
    elif change is None:
        console.print(
            f"{price.operation} was retired already; nothing changed", markup=False, highlight=False
        )
    else:
        console.print(
            f"{price.operation} ({price.app_id}, {price.name}) retired, it was {price_of(price)}",
            markup=False,
            highlight=False,
        )


@app.command()
def history(
    operation: Annotated[
        str | None,
        typer.Argument(metavar="[OPERATION]", help="One operation only (default: all)."),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(metavar="N", help=f"How many changes, newest first (1..{MAX_CHANGES})."),
    ] = 50,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """List the changes to the price list, newest first.

    Who made each, when, the price before and after, and why.

    \b
    Example:
      mana-credits prices history ai_chat_gpt4 --limit 10
    """

    async def work() -> tuple[list[PriceChange], list[Price]]:
        async with open_services(database_url, read_only=True) as services:
            if operation is not None:
                try:
                    await services.prices.get(operation)
                except PriceNotFound as exc:
                    raise known(exc, operation) from exc
            changes = await services.prices.history(operation, limit)
            return changes, await services.prices.list(include_retired=True)

    changes, prices = run(work, PRICE_FIELDS)
    if json:
        print_json([change_json(c) for c in changes])
        return
    table = Table("when", "operation", "action", "change", "operator", "reason")
    for c, after in zip(changes, states_after(changes, prices), strict=True):
        if after is None:
            what = f"{credits_or_dash(c.old_price_milli)} -> {credits_or_dash(c.new_price_milli)}"
        elif c.action is PriceAction.RETIRED:
            what = f"was {price_of(after)}"  # retiring changes nothing else
        else:
            what = change_text(c, after)
        table.add_row(
            c.at.isoformat(timespec="seconds"), c.operation, c.action.value, what, c.operator,
            c.reason or "",
        )  # fmt: skip
    print_table(table, shortened=False)
    if not changes:
        console.print("no changes to the price list" + (f" of {operation}" if operation else ""))
