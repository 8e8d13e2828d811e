"""The ports to services outside the store: time, ids and gift codes, identity, the
payment provider, notifications."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..payment_state import PaymentState
from ..purchases import CheckoutSession, PaymentEvent, PaymentIntent, PaymentRef, Refund


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class IdGenerator(Protocol):
    def new_id(self) -> str:
        """A fresh UUID string."""
        ...


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as proven by a verified token."""

    user_id: str
    email: str | None = None
    role: str = "user"
    name: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class IdentityVerifier(Protocol):
    async def verify(self, token: str) -> Principal:
        """The token's principal; raises `Unauthenticated` for any bad token."""
        ...


class PaymentGateway(Protocol):
    """The payment provider (Stripe in production, a dev gateway locally)."""

    async def ensure_customer(self, user_id: str, email: str | None) -> str: ...

    async def create_payment_intent(
        self,
        *,
        customer_id: str,
        amount_cents: int,
        purchase_id: str,
        metadata: Mapping[str, str],
    ) -> PaymentIntent: ...

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
    ) -> CheckoutSession: ...

    async def refund(
        self,
        *,
        payment_intent_id: str,
        amount_cents: int,
        purchase_id: str,
        metadata: Mapping[str, str],
        attempt: int = 0,
    ) -> Refund:
        """Give the buyer back what is not yet refunded of the payment of
        `amount_cents` euro cents. The same `purchase_id` and `attempt` never refund
        twice (the provider's idempotency key); a later `attempt`, once an earlier
        refund failed and its credits came back, refunds again. Raises
        `PaymentProviderError`."""
        ...

    async def payment_state(self, ref: PaymentRef) -> PaymentState | None:
        """The payment as the provider knows it now: its PaymentIntent (found from the
        charge or the Checkout Session when `ref` names no PaymentIntent), latest
        charge, refunds and disputes. None when the provider knows no such payment,
        or the Checkout Session has no PaymentIntent yet. Raises
        `PaymentProviderUnavailable` (retry later), `PaymentProviderError`."""
        ...

    def verify_webhook(self, payload: bytes, signature: str) -> PaymentEvent:
        """The event, verified and translated; raises `InvalidWebhook` otherwise."""
        ...

    async def close(self) -> None: ...


class Notifier(Protocol):
    """Tells users about things that happened to their account."""

    async def sync_paused(self, user_id: str, *, interval: str, required: int) -> None: ...

    async def credits_expiring(self, user_id: str, *, credits: int, expires_at: datetime) -> None:
        """Tell the user that `credits` of their credits expire at `expires_at` (the
        earliest expiry of the lots announced together). Raises on any failure to
        deliver, so that the caller can try again later."""
        ...

    async def low_balance(self, user_id: str, *, balance: int, threshold: int) -> None:
        """Tell the user that a debit took their spendable balance below `threshold`
        credits, to `balance` credits. Raises on any failure to deliver."""
        ...

    async def close(self) -> None: ...


class CodeGenerator(Protocol):
    def new_code(self) -> str:
        """A fresh gift code from a cryptographic random source."""
        ...
