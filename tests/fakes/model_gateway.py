"""A payment gateway on `StripeModel` in process: the Stripe adapter's own translation of
events and objects, without HTTP, for tests that run hundreds of payment stories."""

from __future__ import annotations

import json
from collections.abc import Mapping

from mana_credits_adapters.payments.stripe_events import translate
from mana_credits_adapters.payments.stripe_state import payment_state, ref_id
from mana_credits_core.errors import InvalidWebhook, PaymentProviderUnavailable
from mana_credits_core.payment_state import PaymentState
from mana_credits_core.purchases import (
    CURRENCY,
    CheckoutSession,
    PaymentEvent,
    PaymentIntent,
    PaymentRef,
    Refund,
)

from .stripe_model import Json, NotFound, StripeModel


class ModelGateway:
    """`PaymentGateway` answering from a `StripeModel`; `down` makes every call fail as
    an unreachable Stripe would. Webhooks are taken unsigned."""

    def __init__(self, model: StripeModel | None = None) -> None:
        self.model = model or StripeModel()
        self.down = False

    def _up(self) -> None:
        if self.down:
            raise PaymentProviderUnavailable()

    async def ensure_customer(self, user_id: str, email: str | None) -> str:
        self._up()
        return str(
            self.model.create_customer({"email": email, "metadata": {"userId": user_id}})["id"]
        )

    async def create_payment_intent(
        self,
        *,
        customer_id: str,
        amount_cents: int,
        purchase_id: str,
        metadata: Mapping[str, str],
    ) -> PaymentIntent:
        self._up()
        intent = self.model.create_intent(
            {
                "amount": amount_cents,
                "currency": CURRENCY,
                "customer": customer_id,
                "metadata": dict(metadata),
            }
        )
        return PaymentIntent(intent["id"], intent["client_secret"], amount_cents, CURRENCY)

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
        self._up()
        session = self.model.create_session(
            {
                "customer": customer_id,
                "client_reference_id": purchase_id,
                "metadata": dict(metadata),
                "payment_intent_data": {"metadata": dict(metadata)},
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {"currency": CURRENCY, "unit_amount": amount_cents},
                    }
                ],
            }
        )
        return CheckoutSession(session["id"], session["url"])

    async def refund(
        self,
        *,
        payment_intent_id: str,
        amount_cents: int,
        purchase_id: str,
        metadata: Mapping[str, str],
        attempt: int = 0,
    ) -> Refund:
        self._up()
        made = self.model.create_refund(
            {"payment_intent": payment_intent_id, "metadata": dict(metadata)}
        )
        return Refund(made["id"], payment_intent_id, made["amount"], made["status"])

    async def payment_state(self, ref: PaymentRef) -> PaymentState | None:
        self._up()
        intent_id = ref.payment_intent_id
        if intent_id is None and ref.charge_id is not None:
            intent_id = ref_id(self.model.charges.get(ref.charge_id, {}), "payment_intent")
        if intent_id is None and ref.checkout_session_id is not None:
            intent_id = ref_id(
                self.model.sessions.get(ref.checkout_session_id, {}), "payment_intent"
            )
        if intent_id is None:
            return None
        try:
            intent = self.model.retrieve(self.model.intents, intent_id, ["latest_charge"])
        except NotFound:
            return None
        charge = ref_id(intent, "latest_charge")
        refunds = self.model.listed(self.model.refunds, {"payment_intent": intent_id})
        disputes = (
            [] if charge is None else self.model.listed(self.model.disputes, {"charge": charge})
        )
        return payment_state(intent, refunds, disputes)

    def verify_webhook(self, payload: bytes, signature: str) -> PaymentEvent:
        try:
            event = json.loads(payload)
        except ValueError as exc:
            raise InvalidWebhook() from exc
        return translate(event)

    def event(self, published: Json) -> PaymentEvent:
        """A published event as the webhook route would hand it to the use case."""
        return translate(json.loads(json.dumps(published)))

    async def close(self) -> None:
        return None
