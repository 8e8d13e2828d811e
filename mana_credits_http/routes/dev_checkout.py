"""The dev gateway's checkout page: pay a purchase locally, as Stripe Checkout would.

Like Stripe Checkout, paying returns the browser to the purchase's `successUrl` and the
page offers its `cancelUrl`; the dev gateway carries both in the page's query string
(`success`, `cancel`) with its HMAC signature (`sig`), since nothing else remembers them.
URLs it did not sign are ignored: the page is no redirect to anywhere. A purchase that is
no longer payable shows its state and no button.
"""

from __future__ import annotations

import html

from aiohttp import web

from mana_credits_adapters.payments.dev import DevGateway, dev_payment
from mana_credits_core.purchases import Purchase, PurchaseStatus

from ..keys import SERVICES
from . import Route

PAGE = """<!doctype html><html lang="en"><meta charset="utf-8">
<title>mana-credits dev checkout</title>
<body style="font-family: sans-serif; max-width: 30em; margin: 4em auto">
<h1>Dev checkout</h1>{body}</body></html>"""

PAYABLE = (PurchaseStatus.PENDING, PurchaseStatus.FAILED)


# Nothing but the page's own inline style; the form posts back here only.
POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def return_url(request: web.Request, name: str, purchase: Purchase) -> str | None:
    """The purchase's `successUrl` (`name` "success") or `cancelUrl` ("cancel") as the
    dev gateway signed them into the page's query, Stripe's session placeholder filled;
    None when the query was not signed by it, or the URL is not http(s)."""
    gateway = request.app[SERVICES].payments
    signed = (
        gateway.return_urls(purchase.id, request.query) if isinstance(gateway, DevGateway) else None
    )
    if signed is None:
        return None
    url = signed[0] if name == "success" else signed[1]
    if not url.startswith(("http://", "https://")):
        return None
    return url.replace("{CHECKOUT_SESSION_ID}", purchase.stripe_checkout_session_id or "")


def page(body: str) -> web.Response:
    return web.Response(
        text=PAGE.format(body=body),
        content_type="text/html",
        headers={"Content-Security-Policy": POLICY},
    )


def summary(purchase: Purchase) -> str:
    euros = purchase.price_euro_cents / 100
    return (
        f'<p>{purchase.credits} credits for {euros:.2f} € — status <b id="status">'
        f"{html.escape(purchase.status.value)}</b>.</p>"
    )


def link(url: str | None, text: str) -> str:
    return "" if url is None else f'<p><a href="{html.escape(url)}">{html.escape(text)}</a></p>'


async def checkout_page(request: web.Request) -> web.Response:
    purchase = await request.app[SERVICES].purchases.get(request.match_info["purchase_id"])
    body = summary(purchase)
    if purchase.status in PAYABLE:
        body += '<form method="post"><button>Pay (no money moves)</button></form>'
        body += link(return_url(request, "cancel", purchase), "Cancel and go back")
    else:
        body += "<p>Nothing to pay.</p>"
        body += link(return_url(request, "success", purchase), "Back to the app")
    return page(body)


async def checkout_pay(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    purchase = await services.purchases.get(request.match_info["purchase_id"])
    outcome = await services.purchases.handle(dev_payment(purchase))
    paid = await services.purchases.get(purchase.id)
    success = return_url(request, "success", paid)
    if success is not None and paid.status == PurchaseStatus.COMPLETED:
        raise web.HTTPSeeOther(success)  # as Stripe Checkout returns after paying
    return page(f"<p>Payment recorded: {html.escape(outcome)}.</p>" + summary(paid))


ROUTES = [
    Route("GET", "/dev/checkout/{purchase_id}", checkout_page,
          "Dev gateway only: the page a dev checkoutUrl opens (HTML)", "none",
          content_type="text/html"),
    Route("POST", "/dev/checkout/{purchase_id}", checkout_pay,
          "Dev gateway only: pay the purchase; 303 to its signed successUrl (HTML)", "none",
          content_type="text/html"),
]  # fmt: skip
