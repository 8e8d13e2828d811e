"""The dev gateway's checkout page: pay a purchase locally, as Stripe Checkout would."""

from __future__ import annotations

import html

from aiohttp import web

from mana_credits_adapters.payments.dev import dev_payment

from ..keys import SERVICES

PAGE = """<!doctype html><meta charset="utf-8"><title>mana-credits dev checkout</title>
<body style="font-family: sans-serif; max-width: 30em; margin: 4em auto">
<h1>Dev checkout</h1><p>{body}</p></body>"""


async def checkout_page(request: web.Request) -> web.Response:
    purchase = await request.app[SERVICES].purchases.get(request.match_info["purchase_id"])
    euros = purchase.price_euro_cents / 100
    body = (
        f"{purchase.credits} credits for {euros:.2f} € — status <b>{purchase.status}</b>."
        f'<form method="post"><button>Pay (no money moves)</button></form>'
    )
    return web.Response(text=PAGE.format(body=body), content_type="text/html")


async def checkout_pay(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    purchase = await services.purchases.get(request.match_info["purchase_id"])
    outcome = await services.purchases.handle(dev_payment(purchase))
    return web.Response(
        text=PAGE.format(body=html.escape(f"Payment recorded: {outcome}.")),
        content_type="text/html",
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/dev/checkout/{purchase_id}", checkout_page)
    app.router.add_post("/dev/checkout/{purchase_id}", checkout_pay)
