"""Stripe's records for the tests: objects that keep their state, and the events Stripe
publishes when they change, shaped as Stripe's API reference and fixtures show them.

The objects live here; `stripe_server.py` serves them to the real `stripe` SDK over
HTTP, `model_gateway.py` to the use cases in process. Actions (`pay`, `refund`,
`dispute`, `close_dispute`, …) change the objects the way a payer, the dashboard or a
bank would and return the events Stripe sends for them, each with a snapshot of its
object as it was then: delivered late or out of order, an event shows an old state.
"""

from __future__ import annotations

import copy
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

API_VERSION = "2026-10-28.endive"  # what the installed SDK pins

Json = dict[str, Any]


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


class NotFound(LookupError):
    """No such object (Stripe answers 404 `resource_missing`)."""


class Refused(ValueError):
    """A request Stripe refuses (400), with its error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class StripeModel:
    """The objects by id, and every event published so far."""

    customers: dict[str, Json] = field(default_factory=dict)
    intents: dict[str, Json] = field(default_factory=dict)
    charges: dict[str, Json] = field(default_factory=dict)
    sessions: dict[str, Json] = field(default_factory=dict)
    refunds: dict[str, Json] = field(default_factory=dict)
    disputes: dict[str, Json] = field(default_factory=dict)
    events: list[Json] = field(default_factory=list)

    def reset(self) -> None:
        for table in (
            self.customers,
            self.intents,
            self.charges,
            self.sessions,
            self.refunds,
            self.disputes,
        ):
            table.clear()
        self.events.clear()

    # Events.

    def publish(self, kind: str, obj: Json, request: str | None = None) -> Json:
        """An event about `obj` as Stripe sends it: a copy of the object as it is now."""
        made = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": request, "idempotency_key": None},
            "type": kind,
        }
        self.events.append(made)
        return made

    # The API: what the SDK creates and reads.

    def create_customer(self, p: Json) -> Json:
        obj = {
            "id": new_id("cus"),
            "object": "customer",
            "email": p.get("email"),
            "metadata": p.get("metadata", {}),
            "livemode": False,
        }
        self.customers[obj["id"]] = obj
        return obj

    def create_intent(self, p: Json) -> Json:
        if p.get("customer") not in self.customers:
            raise Refused("resource_missing", "No such customer")
        return self._intent(int(p["amount"]), p["currency"], p["customer"], p.get("metadata", {}))

    def _intent(self, amount: int, currency: str, customer: str | None, metadata: Json) -> Json:
        pi = new_id("pi")
        obj = {
            "id": pi,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": currency,
            "customer": customer,
            "client_secret": f"{pi}_secret_{uuid.uuid4().hex[:10]}",
            "status": "requires_payment_method",
            "latest_charge": None,
            "last_payment_error": None,
            "metadata": dict(metadata),
            "livemode": False,
        }
        self.intents[pi] = obj
        return obj

    def create_session(self, p: Json) -> Json:
        cs = new_id("cs_test")
        item = p["line_items"][0]
        obj = {
            "id": cs,
            "object": "checkout.session",
            "url": f"https://checkout.stripe.test/c/pay/{cs}",
            "amount_total": int(item["price_data"]["unit_amount"]) * int(item["quantity"]),
            "currency": item["price_data"]["currency"],
            "customer": p.get("customer"),
            "client_reference_id": p.get("client_reference_id"),
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "payment_intent": None,  # made when the buyer submits the page
            "metadata": p.get("metadata", {}),
            "payment_intent_data": p.get("payment_intent_data", {}),
            "livemode": False,
        }
        self.sessions[cs] = obj
        return obj

    def create_refund(self, p: Json) -> Json:
        """A refund of what is left of a PaymentIntent's charge (or `amount` of it)."""
        intent = self.intents.get(p.get("payment_intent", ""))
        if intent is None:
            raise Refused("resource_missing", "No such payment_intent")
        if intent["latest_charge"] is None or intent["status"] != "succeeded":
            raise Refused("charge_not_succeeded", "This PaymentIntent has no successful charge")
        amount = int(p["amount"]) if "amount" in p else None
        refund, _events = self._refund(
            intent["id"], amount, "succeeded", p.get("metadata", {}), p.get("reason")
        )
        return refund

    def retrieve(self, table: dict[str, Json], object_id: str, expand: list[str]) -> Json:
        found = table.get(object_id)
        if found is None:
            raise NotFound(object_id)
        shown = copy.deepcopy(found)
        for path in expand:
            reference = shown.get(path)
            if isinstance(reference, str):
                shown[path] = copy.deepcopy(self._any(reference))
        return shown

    def _any(self, object_id: str) -> Json:
        for table in (self.charges, self.intents, self.refunds, self.disputes, self.sessions):
            if object_id in table:
                return table[object_id]
        raise NotFound(object_id)

    def listed(self, table: dict[str, Json], filters: Json) -> list[Json]:
        """Objects matching every filter (`charge`, `payment_intent`), newest first."""
        wanted = {k: v for k, v in filters.items() if k in ("charge", "payment_intent")}
        found = [o for o in table.values() if all(o.get(k) == v for k, v in wanted.items())]
        return [copy.deepcopy(o) for o in reversed(found)]

    # Actions of payers, banks and the dashboard; each returns the events it published.

    def pay(self, intent_id: str) -> list[Json]:
        """The buyer pays: a charge succeeds and the PaymentIntent with it (paid
        already: the same events again, as Stripe resends them)."""
        intent = self.intents[intent_id]
        if intent["status"] == "succeeded":
            charge = self.charges[intent["latest_charge"]]
            return [
                self.publish("charge.succeeded", charge),
                self.publish("payment_intent.succeeded", intent),
            ]
        charge = self._charge(intent)
        intent.update(status="succeeded", amount_received=intent["amount"], last_payment_error=None)
        return [
            self.publish("charge.succeeded", charge),
            self.publish("payment_intent.succeeded", intent),
        ]

    def _charge(self, intent: Json) -> Json:
        charge = {
            "id": new_id("ch"),
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"],
            "amount_refunded": 0,
            "captured": True,
            "currency": intent["currency"],
            "customer": intent.get("customer"),
            "disputed": False,
            "paid": True,
            "payment_intent": intent["id"],
            "refunded": False,
            "status": "succeeded",
            "metadata": dict(intent["metadata"]),
            "livemode": False,
            # Since API version 2022-11-15 a charge lists its refunds only when expanded.
        }
        self.charges[charge["id"]] = charge
        intent["latest_charge"] = charge["id"]
        return charge

    def fail(self, intent_id: str) -> list[Json]:
        """The payment attempt is declined: the PaymentIntent wants another method."""
        intent = self.intents[intent_id]
        intent.update(
            status="requires_payment_method",
            last_payment_error={"code": "card_declined", "type": "card_error"},
        )
        return [self.publish("payment_intent.payment_failed", intent)]

    def refund(
        self, intent_id: str, amount: int | None = None, *, status: str = "succeeded"
    ) -> list[Json]:
        """A refund of `amount` (default: what is left) of the PaymentIntent's charge,
        made in the dashboard, with `status` (`succeeded`, or `pending` for a while)."""
        return self._refund(intent_id, amount, status, {}, "requested_by_customer")[1]

    def _refund(
        self, intent_id: str, amount: int | None, status: str, metadata: Json, reason: str | None
    ) -> tuple[Json, list[Json]]:
        intent = self.intents[intent_id]
        charge = self.charges[intent["latest_charge"]]
        left = charge["amount"] - charge["amount_refunded"]
        amount = left if amount is None else amount
        if amount <= 0 or amount > left:
            raise Refused("charge_already_refunded", "Charge has already been refunded.")
        refund = {
            "id": new_id("re"),
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "currency": charge["currency"],
            "payment_intent": intent_id,
            "reason": reason,
            "status": status,
            "failure_reason": None,
            "metadata": metadata,
        }
        self.refunds[refund["id"]] = refund
        self._refunded(charge)
        return refund, [
            self.publish("refund.created", refund),
            self.publish("charge.refunded", charge),
        ]

    def _refunded(self, charge: Json) -> None:
        standing = [
            r["amount"]
            for r in self.refunds.values()
            if r["charge"] == charge["id"] and r["status"] in ("succeeded", "pending")
        ]
        charge["amount_refunded"] = sum(standing)
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]

    def fail_refund(self, refund_id: str) -> list[Json]:
        """The bank returns a refund: the money stays with us after all."""
        refund = self.refunds[refund_id]
        refund.update(status="failed", failure_reason="expired_or_canceled_card")
        self._refunded(self.charges[refund["charge"]])
        return [
            self.publish("charge.refund.updated", refund),
            self.publish("refund.updated", refund),
            self.publish("refund.failed", refund),
        ]

    def dispute(
        self,
        intent_id: str,
        amount: int | None = None,
        *,
        inquiry: bool = False,
        with_intent: bool = True,
        reason: str = "fraudulent",
    ) -> list[Json]:
        """The buyer's bank disputes `amount` (default: all) of the charge: an inquiry
        (no money moves) or a chargeback (the money is withdrawn at once)."""
        intent = self.intents[intent_id]
        charge = self.charges[intent["latest_charge"]]
        amount = charge["amount"] if amount is None else amount
        dispute = {
            "id": new_id("dp"),
            "object": "dispute",
            "amount": amount,
            "balance_transactions": [],
            "charge": charge["id"],
            "created": int(time.time()),
            "currency": charge["currency"],
            "evidence_details": {"due_by": int(time.time()) + 8 * 86400, "has_evidence": False},
            "is_charge_refundable": inquiry,
            "livemode": False,
            "metadata": {},
            # Null for a charge made without a PaymentIntent (Stripe's own example).
            "payment_intent": intent_id if with_intent else None,
            "payment_method_details": {
                "type": "card",
                "card": {
                    "brand": "visa",
                    "case_type": "inquiry" if inquiry else "chargeback",
                    "network_reason_code": "10.4",
                },
            },
            "reason": reason,
            "status": "warning_needs_response" if inquiry else "needs_response",
        }
        self.disputes[dispute["id"]] = dispute
        charge["disputed"] = True
        published = [self.publish("charge.dispute.created", dispute)]
        if not inquiry:
            self._move_funds(dispute, -amount)
            published.append(self.publish("charge.dispute.funds_withdrawn", dispute))
        return published

    def _move_funds(self, dispute: Json, amount: int) -> None:
        dispute["balance_transactions"].append(
            {
                "id": new_id("txn"),
                "object": "balance_transaction",
                "amount": amount,
                "currency": dispute["currency"],
                "reporting_category": "dispute" if amount < 0 else "dispute_reversal",
                "type": "adjustment",
                "source": dispute["id"],
            }
        )

    def close_dispute(self, dispute_id: str, *, won: bool) -> list[Json]:
        """The bank decides: a won chargeback reinstates the money; an inquiry simply
        closes (`warning_closed`); a lost one keeps it withdrawn."""
        dispute = self.disputes[dispute_id]
        inquiry = dispute["status"].startswith("warning_")
        published = []
        if inquiry:
            dispute["status"] = "warning_closed" if won else "lost"
            if not won:  # the inquiry became a chargeback, and that was lost
                self._move_funds(dispute, -dispute["amount"])
        elif won:
            dispute["status"] = "won"
            self._move_funds(dispute, dispute["amount"])
            published.append(self.publish("charge.dispute.funds_reinstated", dispute))
        else:
            dispute["status"] = "lost"
        published.append(self.publish("charge.dispute.closed", dispute))
        return published

    def complete_checkout(self, session_id: str, *, paid: bool = True) -> list[Json]:
        """The buyer submits the Checkout page: paid at once by card, or (`paid`
        False) with a delayed method whose PaymentIntent is still processing."""
        session = self.sessions[session_id]
        metadata = session["payment_intent_data"].get("metadata", {})
        intent = self._intent(
            session["amount_total"], session["currency"], session["customer"], metadata
        )
        session.update(status="complete", payment_intent=intent["id"])
        published = []
        if paid:
            published += self.pay(intent["id"])
            session["payment_status"] = "paid"
        else:
            intent["status"] = "processing"
            published.append(self.publish("payment_intent.processing", intent))
        published.append(self.publish("checkout.session.completed", session))
        return published

    def settle_checkout(self, session_id: str, *, succeeded: bool) -> list[Json]:
        """The delayed payment of a completed Checkout Session succeeds or fails."""
        session = self.sessions[session_id]
        if succeeded:
            published = self.pay(session["payment_intent"])
            session["payment_status"] = "paid"
            kind = "checkout.session.async_payment_succeeded"
        else:
            published = self.fail(session["payment_intent"])
            kind = "checkout.session.async_payment_failed"
        return [*published, self.publish(kind, session)]
