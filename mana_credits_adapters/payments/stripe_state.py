"""Stripe's objects (as JSON) in the core's terms: a PaymentIntent with its latest
charge, refunds and disputes become one `PaymentState`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mana_credits_core.payment_state import DisputeState, PaymentState, RefundState

MAX_TEXT = 255
"""Longest id or text taken from an event (the columns that keep them hold 255)."""


def _usable(value: object) -> str | None:
    # Stripe's ids are short and printable; anything else is not an id of ours to store.
    if isinstance(value, str) and 0 < len(value) <= MAX_TEXT and value.isprintable():
        return value
    return None


def ref_id(obj: Mapping[str, Any], key: str) -> str | None:
    """The id `obj[key]` names, whether Stripe sent it as an id or expanded the object."""
    value = obj.get(key)
    if isinstance(value, Mapping):
        value = value.get("id")
    return _usable(value)


def whole(obj: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def text(obj: Mapping[str, Any], key: str) -> str | None:
    """`obj[key]` if it is a printable text of 1..255 characters, else None."""
    return _usable(obj.get(key))


def metadata_purchase(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    return text(metadata, "purchaseId") if isinstance(metadata, Mapping) else None


def refund_state(refund: Mapping[str, Any]) -> RefundState:
    return RefundState(
        id=text(refund, "id") or "",
        amount=whole(refund, "amount"),
        status=text(refund, "status") or "pending",
    )


def dispute_state(dispute: Mapping[str, Any]) -> DisputeState:
    details = dispute.get("payment_method_details")
    card = details.get("card") if isinstance(details, Mapping) else None
    moves = dispute.get("balance_transactions")
    # Withdrawn and reinstated funds are balance transactions of opposite signs (in the
    # account's currency, which may differ from the charge's: only the sign counts).
    net = sum(
        whole(t, "amount")
        for t in (moves if isinstance(moves, list) else [])
        if isinstance(t, Mapping)
    )
    return DisputeState(
        id=text(dispute, "id") or "",
        charge_id=ref_id(dispute, "charge") or "",
        amount=whole(dispute, "amount"),
        status=text(dispute, "status") or "",
        reason=text(dispute, "reason"),
        case_type=text(card, "case_type") if isinstance(card, Mapping) else None,
        funds_withdrawn=net < 0,
    )


def payment_state(
    intent: Mapping[str, Any],
    refunds: Iterable[Mapping[str, Any]],
    disputes: Iterable[Mapping[str, Any]],
) -> PaymentState:
    """The state of the PaymentIntent `intent` (its `latest_charge` an id or expanded),
    given every refund of the PaymentIntent and every dispute of its latest charge."""
    return PaymentState(
        payment_intent_id=text(intent, "id") or "",
        status=text(intent, "status") or "",
        amount=whole(intent, "amount", -1),
        amount_received=whole(intent, "amount_received"),
        currency=(text(intent, "currency") or "").lower(),
        purchase_id=metadata_purchase(intent),
        charge_id=ref_id(intent, "latest_charge"),
        payment_error=intent.get("last_payment_error") is not None,
        refunds=tuple(refund_state(r) for r in refunds),
        disputes=tuple(dispute_state(d) for d in disputes),
    )
