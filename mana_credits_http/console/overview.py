"""The console's overview: what the service owes and sold, Cloud Sync, gifts, expiring
credits, the last reconcile check and a chart of credits used per app and day.

The chart is its own SVG document (`/console/usage.svg`) shown with `<img>`: the
pages' Content-Security-Policy allows no inline style, which pygal's SVG carries, and
an image is a document of its own, rendered without scripts.
"""

from __future__ import annotations

from aiohttp import web

from ..console_chart import usage_chart_svg
from ..keys import SERVICES
from .session import check_csrf
from .signin import BAD_FORM
from .views import refused, render, signed_in

DAYS = 30
CHART_HEADERS = {
    "Content-Type": "image/svg+xml; charset=utf-8",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@signed_in
async def overview(request: web.Request, operator: str) -> web.StreamResponse:
    figures = await request.config_dict[SERVICES].overview.overview(DAYS)
    notice = "Reconcile checked." if request.query.get("checked") else None
    return await render(request, "overview.html", "Overview", o=figures, notice=notice)


@signed_in
async def usage_chart(request: web.Request, operator: str) -> web.StreamResponse:
    # The usage alone (the overview's other figures would cost the page's reads again).
    services = request.config_dict[SERVICES]
    today = services.console.now().date()
    svg = usage_chart_svg(await services.credits.usage_report(DAYS), DAYS, today)
    return web.Response(body=svg.encode(), headers=CHART_HEADERS)


@signed_in
async def check_reconcile(request: web.Request, operator: str) -> web.StreamResponse:
    """Run the full reconcile now (it only reads) and show the overview again."""
    if not await check_csrf(request, await request.post()):
        return await refused(request, "Refused", BAD_FORM, 403)
    await request.config_dict[SERVICES].reconcile_watch.check()
    raise web.HTTPSeeOther("/console?checked=1")


ROUTES = [
    ("GET", "", overview),
    ("GET", "/usage.svg", usage_chart),
    ("POST", "/reconcile", check_reconcile),
]
