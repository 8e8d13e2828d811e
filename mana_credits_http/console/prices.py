"""The console's page of priced operations: usage per operation over the last 30 days
and the price list, read-only (prices are changed with `mana-credits prices`, which
records who changed them and why)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from mana_credits_core.ledger import OperationUsage
from mana_credits_core.pricing import Price, format_credits

from ..keys import SERVICES
from .overview import DAYS
from .views import render, signed_in

RECENT_CHANGES = 10


@dataclass(slots=True)
class OperationTotal:
    """One operation's priced usage over the page's period; `price` from the list
    (None: not listed)."""

    operation: str
    price: Price | None
    calls: int = 0
    quantity: int = 0
    cost_milli: int = 0


def totals(rows: list[OperationUsage], prices: list[Price]) -> list[OperationTotal]:
    """Usage rows (per operation and day) summed per operation, dearest first."""
    listed = {p.operation: p for p in prices}
    found: dict[str, OperationTotal] = {}
    for row in rows:
        total = found.setdefault(
            row.operation, OperationTotal(row.operation, listed.get(row.operation))
        )
        total.calls += row.calls
        total.quantity += row.quantity
        total.cost_milli += row.cost_milli
    return sorted(found.values(), key=lambda t: (-t.cost_milli, t.operation))


def unit_text(price: Price) -> str:
    """How the price counts: "per call", "per month", "per 10 item"."""
    if price.unit is None:
        return "per call"
    return f"per {price.unit}" if price.unit_size == 1 else f"per {price.unit_size} {price.unit}"


@signed_in
async def prices(request: web.Request, operator: str) -> web.StreamResponse:
    services = request.config_dict[SERVICES]
    every = await services.prices.list(include_retired=True)
    usage = totals(await services.credits.usage_by_operation(DAYS), every)
    return await render(
        request,
        "prices.html",
        "Prices and usage",
        days=DAYS,
        usage=usage,
        prices=every,
        changes=await services.prices.history(limit=RECENT_CHANGES),
        total_milli=sum(t.cost_milli for t in usage),
        credits=format_credits,
        unit_text=unit_text,
    )


ROUTES = [("GET", "/prices", prices)]
