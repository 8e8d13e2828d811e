"""Translate verified Stripe events into the core's payment events.

An event only says which payment to read again (`PaymentChanged`): its PaymentIntent,
charge or Checkout Session, and the purchase named in the metadata when the object has
it. The object in the event is a snapshot taken when the event was made, possibly older
than the payment's state by the time it arrives, so nothing else is taken from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mana_credits_core.purchases import Acknowledged, PaymentChanged, PaymentEvent

from .stripe_state import metadata_purchase, ref_id, text

PAYMENT_INTENT_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_intent.processing",
)
CHECKOUT_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
)
CHARGE_EVENTS = ("charge.succeeded", "charge.refunded")
REFUND_EVENTS = ("charge.refund.updated", "refund.created", "refund.updated", "refund.failed")
DISPUTE_EVENTS = (
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
)
SUBSCRIBED_EVENTS = (
    PAYMENT_INTENT_EVENTS + CHECKOUT_EVENTS + CHARGE_EVENTS + REFUND_EVENTS + DISPUTE_EVENTS
)
"""The event types the webhook endpoint must be subscribed to (docs/payments.md)."""


def translate(event: Mapping[str, Any]) -> PaymentEvent:
    """A Stripe event (as JSON) in the core's terms; anything unusable is acknowledged."""
    event_id = text(event, "id") or ""
    kind = (text(event, "type") or "")[:100]  # the width of payment_events.type
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping) or not event_id or kind not in SUBSCRIBED_EVENTS:
        return Acknowledged(event_id, kind)
    own_id = text(obj, "id")
    changed: PaymentChanged | None = None
    if kind in PAYMENT_INTENT_EVENTS and own_id:
        changed = PaymentChanged(event_id, kind, metadata_purchase(obj), payment_intent_id=own_id)
    elif kind in CHECKOUT_EVENTS and own_id:
        changed = PaymentChanged(
            event_id,
            kind,
            metadata_purchase(obj) or text(obj, "client_reference_id"),
            payment_intent_id=ref_id(obj, "payment_intent"),
            checkout_session_id=own_id,
        )
    elif kind in CHARGE_EVENTS and own_id:
        changed = PaymentChanged(
            event_id,
            kind,
            metadata_purchase(obj),
            payment_intent_id=ref_id(obj, "payment_intent"),
            charge_id=own_id,
        )
    elif kind in REFUND_EVENTS + DISPUTE_EVENTS:
        # Refunds and disputes name their charge; their PaymentIntent may be null
        # (a dispute of a charge made without one, as in Stripe's own example).
        intent, charge = ref_id(obj, "payment_intent"), ref_id(obj, "charge")
        if intent or charge:
            changed = PaymentChanged(
                event_id, kind, metadata_purchase(obj), payment_intent_id=intent, charge_id=charge
            )
    return changed or Acknowledged(event_id, kind)
