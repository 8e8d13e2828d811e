"""Credit packages, purchases, and the payment events that make them read the payment."""

from __future__ import annotations

import enum
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
    stripe_charge_id: str | None = None  # the charge refunds and disputes name
    clawback_version: int = 0  # moves of `clawed_back` so far, up or down


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


@dataclass(frozen=True, slots=True)
class PaymentRef:
    """Whatever names a payment at the provider; any one is enough to read it."""

    payment_intent_id: str | None = None
    charge_id: str | None = None
    checkout_session_id: str | None = None


# Verified events from the payment provider, already translated out of its vocabulary.


@dataclass(frozen=True, slots=True)
class PaymentChanged:
    """The provider says something happened to a payment (paid, failed, refunded,
    disputed, …). Only a hint: the use case reads the payment's current state before
    acting, so the event's own copy of the objects, stale or out of order, never counts.
    """

    event_id: str
    type: str  # the provider's event type, for the log
    purchase_id: str | None = None  # from the payment's metadata, when the event has it
    payment_intent_id: str | None = None
    charge_id: str | None = None
    checkout_session_id: str | None = None

    @property
    def ref(self) -> PaymentRef:
        return PaymentRef(self.payment_intent_id, self.charge_id, self.checkout_session_id)


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """An event we accept and do nothing with (unknown types, unusable payloads)."""

    event_id: str
    type: str


PaymentEvent = PaymentChanged | Acknowledged


DEFAULT_CATALOGUE: list[tuple[str, str, int, int]] = [
    # (name, description, credits, price in euro cents): bigger packs carry a bonus.
    ("Starter", "500 credits", 500, 500),
    ("Plus", "1,100 credits (10% bonus)", 1100, 1000),
    ("Pro", "2,875 credits (15% bonus)", 2875, 2500),
    ("Max", "6,000 credits (20% bonus)", 6000, 5000),
]
