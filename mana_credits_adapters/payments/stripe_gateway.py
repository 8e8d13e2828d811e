"""The Stripe payment gateway, on the official SDK's async client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import stripe

from mana_credits_core.errors import (
    InvalidWebhook,
    PaymentProviderError,
    PaymentProviderUnavailable,
)
from mana_credits_core.payment_state import PaymentState
from mana_credits_core.purchases import (
    CURRENCY,
    CheckoutSession,
    PaymentEvent,
    PaymentIntent,
    PaymentRef,
    Refund,
)

from .stripe_events import translate
from .stripe_state import payment_state, ref_id

# How far a webhook's signed timestamp may be from our clock, either way (Stripe's own).
WEBHOOK_TOLERANCE_SECONDS = 300


def signed_timestamp(header: str) -> int:
    """The `t` of a `Stripe-Signature` header, read as the SDK reads it (the first `t`
    item), so it is the timestamp the signature was checked over.

    Raises `InvalidWebhook` when there is none or it is not an integer.
    """
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key == "t":
            try:
                return int(value.partition("=")[0])
            except ValueError as exc:
                raise InvalidWebhook() from exc
    raise InvalidWebhook()


STATE_DEADLINE = 15.0
"""Seconds one read of a payment's state may take, all its calls and retries together."""


def refund_key(purchase_id: str, attempt: int) -> str:
    """The idempotency key of a purchase's refund: Stripe answers a key it has seen
    within 24 hours with the refund it made then, so a new attempt (the earlier refund
    failed) needs a key of its own. The first attempt keeps the plain key."""
    return f"refund:{purchase_id}" if attempt == 0 else f"refund:{purchase_id}:{attempt}"


class StripeGateway:
    """Customers, PaymentIntents, Checkout Sessions and refunds; every call that
    creates carries an idempotency key derived from our own ids, so a retry never
    creates a second one. Payments are read back whole (`payment_state`).
    """

    def __init__(
        self,
        secret_key: str,
        webhook_secret: str,
        *,
        api_base: str | None = None,
        timeout: float = 10.0,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        """`wallclock`: seconds since the epoch, what webhook timestamps are held to."""
        self._http = stripe.AIOHTTPClient(timeout=timeout)
        self._client = stripe.StripeClient(
            secret_key,
            http_client=self._http,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=2,
        )
        self._webhook_secret = webhook_secret
        self._wallclock = wallclock

    async def ensure_customer(self, user_id: str, email: str | None) -> str:
        params: dict[str, Any] = {"metadata": {"userId": user_id}}
        if email:
            params["email"] = email
        customer = await self._call(
            self._client.v1.customers.create_async,
            params,
            f"customer:{user_id}",
        )
        return str(customer.id)

    async def create_payment_intent(
        self,
        *,
        customer_id: str,
        amount_cents: int,
        purchase_id: str,
        metadata: Mapping[str, str],
    ) -> PaymentIntent:
        params = {
            "amount": amount_cents,
            "currency": CURRENCY,
            "customer": customer_id,
            "metadata": dict(metadata),
            "automatic_payment_methods": {"enabled": True},
        }
        intent = await self._call(
            self._client.v1.payment_intents.create_async, params, f"purchase:{purchase_id}"
        )
        return PaymentIntent(
            id=str(intent.id),
            client_secret=str(intent.client_secret),
            amount=int(intent.amount),
            currency=str(intent.currency),
        )

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
        params = {
            "mode": "payment",
            "customer": customer_id,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": purchase_id,
            "metadata": dict(metadata),
            # The PaymentIntent carries the purchase too, so either event finds it.
            "payment_intent_data": {"metadata": dict(metadata)},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": CURRENCY,
                        "unit_amount": amount_cents,
                        "product_data": {"name": product_name},
                    },
                }
            ],
        }
        session = await self._call(
            self._client.v1.checkout.sessions.create_async, params, f"checkout:{purchase_id}"
        )
        return CheckoutSession(id=str(session.id), url=str(session.url))

    async def refund(
        self,
        *,
        payment_intent_id: str,
        amount_cents: int,
        purchase_id: str,
        metadata: Mapping[str, str],
        attempt: int = 0,
    ) -> Refund:
        # No amount: Stripe refunds what is left, after any refund made in its dashboard.
        params = {
            "payment_intent": payment_intent_id,
            "reason": "requested_by_customer",
            "metadata": dict(metadata),
        }
        refund = await self._call(
            self._client.v1.refunds.create_async, params, refund_key(purchase_id, attempt)
        )
        return Refund(
            id=str(refund.id),
            payment_intent_id=payment_intent_id,
            amount=int(refund.amount),
            status=str(refund.status),
        )

    async def payment_state(self, ref: PaymentRef) -> PaymentState | None:
        """Read the payment now: the PaymentIntent (from the charge or the Checkout
        Session when `ref` has no PaymentIntent id) with its latest charge expanded,
        every refund of the PaymentIntent and every dispute of that charge. Stripe's
        advice for webhooks: the event says what to look at, the API what is true.

        The whole read is bounded by `STATE_DEADLINE` seconds (the SDK's timeout and
        retries apply per call): past it, `PaymentProviderUnavailable`, and the webhook
        answers 503 well before Stripe gives up waiting on it."""
        try:
            async with asyncio.timeout(STATE_DEADLINE):
                return await self._payment_state(ref)
        except TimeoutError:
            raise PaymentProviderUnavailable() from None

    async def _payment_state(self, ref: PaymentRef) -> PaymentState | None:
        intent_id = ref.payment_intent_id
        if intent_id is None and ref.charge_id is not None:
            charge = await self._read(self._client.v1.charges.retrieve_async, ref.charge_id)
            intent_id = None if charge is None else ref_id(charge, "payment_intent")
        if intent_id is None and ref.checkout_session_id is not None:
            session = await self._read(
                self._client.v1.checkout.sessions.retrieve_async, ref.checkout_session_id
            )
            intent_id = None if session is None else ref_id(session, "payment_intent")
        if intent_id is None:
            return None
        intent = await self._read(
            self._client.v1.payment_intents.retrieve_async,
            intent_id,
            {"expand": ["latest_charge"]},
        )
        if intent is None:
            return None
        refunds = await self._list(
            self._client.v1.refunds.list_async, {"payment_intent": intent_id}
        )
        charge_id = ref_id(intent, "latest_charge")
        disputes = (
            []
            if charge_id is None
            else await self._list(self._client.v1.disputes.list_async, {"charge": charge_id})
        )
        return payment_state(intent, refunds, disputes)

    def verify_webhook(self, payload: bytes, signature: str) -> PaymentEvent:
        """The event of a webhook signed with our secret (Stripe's scheme) at most
        `WEBHOOK_TOLERANCE_SECONDS` before or after now.

        Raises `InvalidWebhook` for a bad, stale or future-dated signature, or a body
        that is not a JSON object (nested beyond what the parser takes included).
        """
        if not self._webhook_secret:
            raise InvalidWebhook("Webhook secret not configured")
        try:
            # The SDK checks the signature; it would check only the past side of the
            # tolerance, so both sides are checked below against one clock.
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8"), signature, self._webhook_secret, None
            )
        except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
            raise InvalidWebhook() from exc
        if abs(self._wallclock() - signed_timestamp(signature)) > WEBHOOK_TOLERANCE_SECONDS:
            raise InvalidWebhook()
        try:
            event = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise InvalidWebhook() from exc
        if not isinstance(event, dict):
            raise InvalidWebhook()
        return translate(event)

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]  # untyped in the SDK

    @staticmethod
    async def _call(method: Any, params: dict[str, Any], idempotency_key: str) -> Any:
        with _provider_errors():
            return await method(params, options={"idempotency_key": idempotency_key})

    @staticmethod
    async def _read(
        method: Any, object_id: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The object as plain JSON, or None when Stripe has no such object."""
        with _provider_errors():
            try:
                found = await method(object_id, params)
            except stripe.InvalidRequestError as exc:
                if exc.http_status == 404:
                    return None
                raise
        return dict(found.to_dict())

    @staticmethod
    async def _list(method: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every object of a list, page after page, as plain JSON."""
        with _provider_errors():
            page = await method(params | {"limit": 100})
            return [dict(item.to_dict()) async for item in page.auto_paging_iter()]


@contextmanager
def _provider_errors() -> Iterator[None]:
    """Stripe's errors as the core's: unreachable, rate limited or 5xx → retry later."""
    try:
        yield
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise PaymentProviderUnavailable() from exc
    except stripe.StripeError as exc:
        status = getattr(exc, "http_status", None)
        if isinstance(status, int) and status >= 500:
            raise PaymentProviderUnavailable() from exc
        raise PaymentProviderError() from exc
