"""Bodies of the credit purchase routes: packages on sale, purchases, their start and the
payment provider's webhook (docs/payments.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import StrictStr

from mana_credits_core.purchases import Package, Purchase, PurchaseStatus

from .models import Camel, drop_none, iso


class PackageOut(Camel):
    id: str
    name: str
    description: str | None
    credits: int
    price_euro_cents: int
    stripe_price_id: str | None
    active: bool
    sort_order: int
    metadata: dict[str, Any] | None
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, p: Package) -> PackageOut:
        return cls(
            id=p.id,
            name=p.name,
            description=p.description,
            credits=p.credits,
            price_euro_cents=p.price_euro_cents,
            stripe_price_id=p.stripe_price_id,
            active=p.active,
            sort_order=p.sort_order,
            metadata=p.metadata,
            created_at=iso(p.created_at),
            updated_at=iso(p.updated_at),
        )


class PurchaseOut(Camel):
    id: str
    user_id: str
    package_id: str
    credits: int
    price_euro_cents: int
    stripe_payment_intent_id: str | None
    stripe_customer_id: str | None
    status: PurchaseStatus
    metadata: dict[str, Any] | None
    created_at: str
    completed_at: str | None

    @classmethod
    def of(cls, p: Purchase) -> PurchaseOut:
        return cls(
            id=p.id,
            user_id=p.user_id,
            package_id=p.package_id,
            credits=p.credits,
            price_euro_cents=p.price_euro_cents,
            stripe_payment_intent_id=p.stripe_payment_intent_id,
            stripe_customer_id=p.stripe_customer_id,
            status=p.status,
            metadata=p.metadata,
            created_at=iso(p.created_at),
            completed_at=None if p.completed_at is None else iso(p.completed_at),
        )


class PurchaseBody(Camel):
    package_id: StrictStr
    success_url: StrictStr | None = None
    cancel_url: StrictStr | None = None


class PurchaseStartedOut(Camel):
    """PaymentIntent flow: `clientSecret`; Checkout flow: `checkoutUrl`."""

    purchase_id: str
    client_secret: str | None = None
    checkout_url: str | None = None
    amount: int
    credits: int

    def render(self) -> dict[str, Any]:
        return drop_none(super().render())


class WebhookOut(Camel):
    received: Literal[True] = True
