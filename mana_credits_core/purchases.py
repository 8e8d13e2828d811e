"""Credit packages, purchases, and the payment events that complete or undo them."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

CURRENCY = "eur"


@dataclass(frozen=True, slots=True)
class Package:
    """A bundle of credits on sale for a price in euro cents."""

    id: str
    name: str
    description: str | None
    credits: int
    price_euro_cents: int
    stripe_price_id: str | None
    active: bool
    sort_order: int
    metadata: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class PurchaseStatus(enum.StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Purchase:
    """One attempt to buy a package. Completed (and credited) at most once."""

    id: str
    user_id: str
    package_id: str
    credits: int
    price_euro_cents: int
    stripe_payment_intent_id: str | None
    stripe_checkout_session_id: str | None
    stripe_customer_id: str | None
    status: PurchaseStatus
    metadata: dict[str, Any] | None
    created_at: datetime
    completed_at: datetime | None
    clawed_back: int = 0  # credits taken back after refunds or disputes


@dataclass(frozen=True, slots=True)
class PaymentIntent:
    id: str
    client_secret: str
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class Refund:
    """Money sent back to a buyer by the provider: `amount` euro cents in all."""

    id: str
    payment_intent_id: str
    amount: int
    status: str


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    id: str
    url: str


# Verified events from the payment provider, already translated out of its vocabulary.


@dataclass(frozen=True, slots=True)
class PaymentSucceeded:
    event_id: str
    purchase_id: str | None
    payment_intent_id: str
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class CheckoutCompleted:
    event_id: str
    purchase_id: str | None
    session_id: str
    payment_intent_id: str | None
    amount: int
    currency: str
    paid: bool


@dataclass(frozen=True, slots=True)
class PaymentFailed:
    event_id: str
    purchase_id: str | None
    payment_intent_id: str


@dataclass(frozen=True, slots=True)
class PaymentRefunded:
    """Money went back to the buyer: `refunded` of `amount` cents, cumulative."""

    event_id: str
    payment_intent_id: str
    refunded: int
    amount: int
    note: Mapping[str, str] | None = None  # who refunded and why, for the ledger entry


@dataclass(frozen=True, slots=True)
class PaymentDisputed:
    event_id: str
    payment_intent_id: str


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """An event we accept and do nothing with (processing, unknown types)."""

    event_id: str
    type: str


PaymentEvent = (
    PaymentSucceeded
    | CheckoutCompleted
    | PaymentFailed
    | PaymentRefunded
    | PaymentDisputed
    | Acknowledged
)


def clawback_target(purchase: Purchase, refunded: int, amount: int) -> int:
    """Credits to have taken back after `refunded` of `amount` cents went back.

    Proportional to the money returned, rounded up so a refund never leaves the
    buyer with credits they did not pay for, and never more than were bought.
    """
    if amount <= 0 or refunded <= 0:
        return 0
    share = -(-purchase.credits * min(refunded, amount) // amount)
    return min(purchase.credits, share)


DEFAULT_CATALOGUE: list[tuple[str, str, int, int]] = [
    # (name, description, credits, price in euro cents): bigger packs carry a bonus.
    ("Starter", "500 credits", 500, 500),
    ("Plus", "1,100 credits (10% bonus)", 1100, 1000),
    ("Pro", "2,875 credits (15% bonus)", 2875, 2500),
    ("Max", "6,000 credits (20% bonus)", 6000, 5000),
]
