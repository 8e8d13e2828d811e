"""A payment as the provider knows it now, and where that puts the purchase it paid for.

Events from the provider arrive late, twice, out of order, or not at all; its current
state does not. The purchases use case reads the state (`PaymentGateway.payment_state`)
whenever an event names a payment, and `settle` decides from the state alone, so the
same state always leads to the same purchase, whatever the events said before.

Claw-back rule (docs/payments.md): of a completed purchase of C credits whose payment
received P euro cents, `floor(C * min(R, P) / P)` credits are taken back, where R is the
money that went back to the buyer: refunds `succeeded` or `pending`, plus disputes whose
money is lost (`lost`) or withdrawn while a chargeback is open (`needs_response`,
`under_review`). Inquiries (`warning_*`, case type `inquiry`), won disputes (`won`,
`warning_closed`), failed or cancelled refunds take nothing. Rounding down leaves a
fraction of a credit with the buyer, never more than they paid for plus that fraction.
"""

from __future__ import annotations

from dataclasses import dataclass

from .purchases import CURRENCY, PaymentRef, Purchase, PurchaseStatus

__all__ = [
    "DisputeState",
    "PaymentRef",
    "PaymentState",
    "RefundState",
    "Settlement",
    "clawback_target",
    "settle",
]

REFUND_RETURNED = frozenset({"succeeded", "pending"})
"""Refund statuses whose money is (being) sent back; `failed` and `canceled` stay ours."""

CHARGEBACK_OPEN = frozenset({"needs_response", "under_review"})
"""Open chargebacks: their money is withdrawn while they last (when the provider says so)."""


@dataclass(frozen=True, slots=True)
class RefundState:
    """One refund of the payment: `amount` euro cents, its status at the provider."""

    id: str
    amount: int
    status: str  # pending, requires_action, succeeded, failed, canceled

    @property
    def returned(self) -> int:
        """Euro cents this refund sends back to the buyer (0 unless it stands)."""
        return self.amount if self.status in REFUND_RETURNED else 0


@dataclass(frozen=True, slots=True)
class DisputeState:
    """One dispute of the payment's charge: `amount` euro cents contested."""

    id: str
    charge_id: str
    amount: int
    status: str  # warning_needs_response … warning_closed, needs_response … won, lost
    reason: str | None = None  # fraudulent, product_not_received, general, …
    case_type: str | None = None  # card disputes: chargeback, inquiry, …
    funds_withdrawn: bool = False  # the dispute's balance transactions net to a withdrawal

    @property
    def inquiry(self) -> bool:
        """A question from the bank, no money taken (unless it becomes a chargeback)."""
        return self.case_type == "inquiry" or self.status.startswith("warning_")

    @property
    def lost(self) -> int:
        """Euro cents this dispute takes from us now: all of it once lost, and while an
        open chargeback holds the money withdrawn; nothing for inquiries or won ones."""
        if self.status == "lost":
            return self.amount
        if self.status in CHARGEBACK_OPEN and self.funds_withdrawn and not self.inquiry:
            return self.amount
        return 0


@dataclass(frozen=True, slots=True)
class PaymentState:
    """The payment (a PaymentIntent) as it is now: amounts in euro cents."""

    payment_intent_id: str
    status: str  # requires_payment_method, processing, succeeded, canceled, …
    amount: int  # asked for
    amount_received: int  # paid
    currency: str
    purchase_id: str | None = None  # the purchase named in the payment's metadata
    charge_id: str | None = None  # the latest charge, the one refunds and disputes are on
    payment_error: bool = False  # the last attempt failed
    refunds: tuple[RefundState, ...] = ()
    disputes: tuple[DisputeState, ...] = ()

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def failed(self) -> bool:
        """Not paid, and not about to be: cancelled, or the last attempt failed."""
        return self.status == "canceled" or (
            self.status == "requires_payment_method" and self.payment_error
        )

    @property
    def refunded(self) -> int:
        return sum(r.returned for r in self.refunds)

    @property
    def disputed(self) -> int:
        return sum(d.lost for d in self.disputes)

    @property
    def returned(self) -> int:
        """Euro cents gone back to the buyer, refunds and disputes, at most what was paid."""
        return min(self.amount_received, self.refunded + self.disputed)


def clawback_target(credits: int, state: PaymentState) -> int:
    """Credits of a purchase of `credits` to have taken back for this payment state:
    `floor(credits * returned / received)`, 0 when nothing was received. Rounded down,
    in the buyer's favour; never more than `credits`."""
    if state.amount_received <= 0:
        return 0
    return credits * state.returned // state.amount_received


@dataclass(frozen=True, slots=True)
class Settlement:
    """Where a purchase must be for a payment state."""

    complete: bool  # pending or failed → completed: the credits are granted
    fail: bool  # pending → failed
    clawed_back: int  # credits taken back (0 unless the purchase is, or becomes, completed)


def settle(purchase: Purchase, state: PaymentState) -> Settlement | str:
    """The settlement the state implies for `purchase`, or why the state is not the
    purchase's payment ("ignored: …"): another purchase's metadata or PaymentIntent,
    another amount or currency. A completed purchase is never failed afterwards."""
    if state.purchase_id not in (None, purchase.id):
        return "ignored: the payment belongs to another purchase"
    if purchase.stripe_payment_intent_id not in (None, state.payment_intent_id):
        return "ignored: payment intent does not match the purchase"
    if (state.amount, state.currency.lower()) != (purchase.price_euro_cents, CURRENCY):
        return "ignored: amount or currency does not match the purchase"
    payable = purchase.status in (PurchaseStatus.PENDING, PurchaseStatus.FAILED)
    complete = state.succeeded and payable
    granted = complete or purchase.status == PurchaseStatus.COMPLETED
    return Settlement(
        complete=complete,
        fail=state.failed and purchase.status == PurchaseStatus.PENDING,
        clawed_back=clawback_target(purchase.credits, state) if granted else 0,
    )
