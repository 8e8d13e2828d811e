"""The console's page of priced operations: usage per operation over the last 30 days
and the price list, read-only (prices are changed with `mana-credits prices`, which
records who changed them and why)."""

from __future__ import annotations

from aiohttp import web

from mana_credits_core.pricing import format_credits, operation_totals, unit_text

from ..keys import SERVICES
from .overview import DAYS
from .views import render, signed_in

RECENT_CHANGES = 10


@signed_in
async def prices(request: web.Request, operator: str) -> web.StreamResponse:
    services = request.config_dict[SERVICES]
    every = await services.prices.list(include_retired=True)
    usage = operation_totals(await services.credits.usage_by_operation(DAYS), every)
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
