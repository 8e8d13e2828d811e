"""The dev payment gateway: payments that `mana-credits dev pay` completes locally."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from urllib.parse import urlencode

from mana_credits_core.errors import InvalidWebhook
from mana_credits_core.purchases import (
    CURRENCY,
    CheckoutSession,
    PaymentEvent,
    PaymentIntent,
    PaymentSucceeded,
    Purchase,
    Refund,
)


class DevGateway:
    """Stands in for Stripe on the embedded default. Nothing is charged: a purchase
    is paid with `mana-credits dev pay <purchaseId>`, which feeds the same
    `PaymentSucceeded` event a Stripe webhook would through the same use case.
    """

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url.rstrip("/")

    async def ensure_customer(self, user_id: str, email: str | None) -> str:
        return f"cus_dev_{uuid.uuid5(uuid.NAMESPACE_URL, user_id).hex[:16]}"

    async def create_payment_intent(
        self,
        *,
        customer_id: str,
        amount_cents: int,
        purchase_id: str,
        metadata: Mapping[str, str],
    ) -> PaymentIntent:
        intent_id = f"pi_dev_{uuid.uuid4().hex}"
        return PaymentIntent(intent_id, f"{intent_id}_secret_dev", amount_cents, "eur")

    async def create_checkout_session(
        self,
        *,
        customer_id: str,
        amount_cents: int,
        purchase_id: str,
        product_name: str,
        success_url: str,
        cancel_url: str,
        metadata: Mapping[str, str],
    ) -> CheckoutSession:
        session_id = f"cs_dev_{uuid.uuid4().hex}"
        # The page returns to these after paying, as Stripe Checkout does.
        query = urlencode({"success": success_url, "cancel": cancel_url})
        return CheckoutSession(session_id, f"{self._base_url}/dev/checkout/{purchase_id}?{query}")

    async def refund(
        self,
        *,
        payment_intent_id: str,
        amount_cents: int,
        purchase_id: str,
        metadata: Mapping[str, str],
    ) -> Refund:
        """Refunded locally (no money moved with the dev gateway): the same refund id
        for the same purchase."""
        refund_id = f"re_dev_{uuid.uuid5(uuid.NAMESPACE_URL, purchase_id).hex[:24]}"
        return Refund(refund_id, payment_intent_id, amount_cents, status="succeeded")

    def verify_webhook(self, payload: bytes, signature: str) -> PaymentEvent:
        raise InvalidWebhook("Webhooks are not accepted by the dev payment gateway")

    async def close(self) -> None:
        return None


def dev_payment(purchase: Purchase) -> PaymentSucceeded:
    """The event a successful Stripe payment of `purchase` would produce."""
    return PaymentSucceeded(
        event_id=f"dev:{purchase.id}",
        purchase_id=purchase.id,
        payment_intent_id=purchase.stripe_payment_intent_id or f"pi_dev_{purchase.id}",
        amount=purchase.price_euro_cents,
        currency=CURRENCY,
    )
