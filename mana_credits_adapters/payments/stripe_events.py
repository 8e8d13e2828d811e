"""Translate verified Stripe events into the core's payment events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mana_credits_core.purchases import (
    Acknowledged,
    CheckoutCompleted,
    PaymentDisputed,
    PaymentEvent,
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
)


def _str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if isinstance(value, Mapping):  # an expanded object: take its id
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _purchase_id(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    return _str(metadata, "purchaseId") if isinstance(metadata, Mapping) else None


def translate(event: Mapping[str, Any]) -> PaymentEvent:
    """A Stripe event (as JSON) in the core's terms; anything unusable is acknowledged."""
    event_id = _str(event, "id") or ""
    kind = _str(event, "type") or ""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping) or not event_id:
        return Acknowledged(event_id, kind)
    obj_id = _str(obj, "id")
    currency = (_str(obj, "currency") or "").lower()
    if kind == "payment_intent.succeeded" and obj_id:
        return PaymentSucceeded(event_id, _purchase_id(obj), obj_id, _int(obj, "amount"), currency)
    if kind == "payment_intent.payment_failed" and obj_id:
        return PaymentFailed(event_id, _purchase_id(obj), obj_id)
    if kind == "checkout.session.completed" and obj_id:
        return CheckoutCompleted(
            event_id,
            _purchase_id(obj),
            obj_id,
            _str(obj, "payment_intent"),
            _int(obj, "amount_total"),
            currency,
            paid=obj.get("payment_status") == "paid",
        )
    intent = _str(obj, "payment_intent")
    if kind == "charge.refunded" and intent:
        return PaymentRefunded(event_id, intent, _int(obj, "amount_refunded"), _int(obj, "amount"))
    if kind == "charge.dispute.created" and intent:
        return PaymentDisputed(event_id, intent)
    return Acknowledged(event_id, kind)
