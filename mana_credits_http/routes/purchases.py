"""Buying credits: the package catalogue, purchases, and the Stripe webhook."""

from __future__ import annotations

import logging

from aiohttp import web

from mana_credits_core.errors import InvalidWebhook

from ..auth import require_user
from ..body import query_int, read_body
from ..jsonout import json_response
from ..keys import SERVICES
from ..purchase_models import (
    PackageOut,
    PurchaseBody,
    PurchaseOut,
    PurchaseStartedOut,
    WebhookOut,
)
from . import Route

log = logging.getLogger("mana_credits.webhooks")


async def packages(request: web.Request) -> web.Response:
    found = await request.app[SERVICES].purchases.packages()
    return json_response([PackageOut.of(p).render() for p in found])


async def purchase(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await read_body(request, PurchaseBody)
    started = await request.app[SERVICES].purchases.start(
        user.user_id,
        body.package_id,
        email=user.email,
        success_url=body.success_url,
        cancel_url=body.cancel_url,
    )
    answer = PurchaseStartedOut(
        purchase_id=started.purchase.id,
        client_secret=started.client_secret,
        checkout_url=started.checkout_url,
        amount=started.purchase.price_euro_cents,
        credits=started.purchase.credits,
    )
    return json_response(answer.render())


async def purchases(request: web.Request) -> web.Response:
    user = await require_user(request)
    limit = query_int(request, "limit")
    found = await request.app[SERVICES].purchases.purchases(user.user_id, limit or 50)
    return json_response([PurchaseOut.of(p).render() for p in found])


async def purchase_status(request: web.Request) -> web.Response:
    user = await require_user(request)
    found = await request.app[SERVICES].purchases.purchase(
        user.user_id, request.match_info["purchase_id"]
    )
    return json_response(PurchaseOut.of(found).render())


async def stripe_webhook(request: web.Request) -> web.Response:
    """Verify the signature over the raw body, then settle the purchase the event names
    from the payment's current state at Stripe (503 when Stripe or the database cannot
    be reached: Stripe delivers the event again)."""
    signature = request.headers.get("Stripe-Signature", "")
    if not signature:
        return json_response({"error": "Missing signature"}, status=400)
    payload = await request.read()
    services = request.app[SERVICES]
    try:
        event = services.payments.verify_webhook(payload, signature)
    except InvalidWebhook:
        return json_response({"error": "Invalid signature"}, status=400)
    outcome = await services.purchases.handle(event)
    log.info("stripe event %s: %s", event.event_id, outcome)
    return json_response(WebhookOut().render())


ROUTES = [
    Route(
        "GET",
        "/api/v1/credits/packages",
        packages,
        "Credit packages on sale, by sortOrder",
        "none",
        response=PackageOut,
        many=True,
    ),
    Route(
        "POST",
        "/api/v1/credits/purchase",
        purchase,
        "Start a purchase: PaymentIntent, or Checkout with successUrl/cancelUrl",
        "user",
        body=PurchaseBody,
        response=PurchaseStartedOut,
    ),
    Route(
        "GET",
        "/api/v1/credits/purchases",
        purchases,
        "Your purchases, newest first",
        "user",
        response=PurchaseOut,
        many=True,
    ),
    Route(
        "GET",
        "/api/v1/credits/purchase/{purchase_id}",
        purchase_status,
        "One of your purchases",
        "user",
        response=PurchaseOut,
    ),
    Route(
        "POST",
        "/api/v1/webhooks/stripe",
        stripe_webhook,
        "Stripe events (Stripe-Signature over the raw body)",
        "stripe-signature",
        response=WebhookOut,
    ),
]
