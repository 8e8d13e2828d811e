"""The dev payment gateway: payments that `mana-credits dev pay` completes locally."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from mana_credits_core.errors import InvalidWebhook
from mana_credits_core.payment_state import DisputeState, PaymentState, RefundState
from mana_credits_core.purchases import (
    CURRENCY,
    CheckoutSession,
    PaymentChanged,
    PaymentEvent,
    PaymentIntent,
    PaymentRef,
    Purchase,
    PurchaseStatus,
    Refund,
)


@dataclass
class DevPayment:
    """One dev payment: paid in full, then perhaps refunded or disputed."""

    intent_id: str
    amount: int
    purchase_id: str
    refunds: list[RefundState] = field(default_factory=list)
    disputes: list[DisputeState] = field(default_factory=list)


class DevPayments:
    """What the dev provider knows, as Stripe's records would: the payments made in this
    process (`dev_payment`), their refunds and disputes. Nothing is stored: a payment
    this process never saw reads as unknown, and nothing changes for it.
    """

    def __init__(self) -> None:
        self._payments: dict[str, DevPayment] = {}

    def pay(self, intent_id: str, amount: int, purchase_id: str) -> DevPayment:
        """Record `amount` euro cents paid for `purchase_id` (again: the same payment)."""
        return self._payments.setdefault(intent_id, DevPayment(intent_id, amount, purchase_id))

    def refund(self, intent_id: str, amount: int, purchase_id: str) -> RefundState:
        """Refund what is left of the payment; the same refund for the same purchase.
        Only paid purchases are refunded, so a payment unknown here was paid in full
        in another process."""
        payment = self.pay(intent_id, amount, purchase_id)
        refund_id = f"re_dev_{uuid.uuid5(uuid.NAMESPACE_URL, purchase_id).hex[:24]}"
        for refund in payment.refunds:
            if refund.id == refund_id:
                return refund
        left = payment.amount - sum(r.returned for r in payment.refunds)
        refund = RefundState(refund_id, left, "succeeded")
        payment.refunds.append(refund)
        return refund

    def dispute(self, intent_id: str, amount: int, status: str = "lost") -> DisputeState:
        """A dispute of `amount` euro cents of a payment made here (a chargeback with its
        money withdrawn); raises `KeyError` for a payment unknown here."""
        payment = self._payments[intent_id]
        dispute = DisputeState(
            id=f"dp_dev_{uuid.uuid4().hex[:24]}",
            charge_id="",
            amount=amount,
            status=status,
            case_type="chargeback",
            funds_withdrawn=True,
        )
        payment.disputes.append(dispute)
        return dispute

    def state(self, intent_id: str) -> PaymentState | None:
        payment = self._payments.get(intent_id)
        if payment is None:
            return None
        return PaymentState(
            payment_intent_id=intent_id,
            status="succeeded",
            amount=payment.amount,
            amount_received=payment.amount,
            currency=CURRENCY,
            purchase_id=payment.purchase_id,
            refunds=tuple(payment.refunds),
            disputes=tuple(payment.disputes),
        )


DEV_PAYMENTS = DevPayments()
"""The dev provider of this process: one for every gateway, as Stripe is one for all."""


class DevGateway:
    """Stands in for Stripe on the embedded default. Nothing is charged: a purchase
    is paid with `mana-credits dev pay <purchaseId>` (or its dev checkout page), which
    records the payment in `DEV_PAYMENTS` and feeds the same `PaymentChanged` event a
    Stripe webhook would through the same use case, which reads the payment back here.
    """

    def __init__(
        self, base_url: str, home: Path | None = None, payments: DevPayments | None = None
    ) -> None:
        """`home`: where the key signing the checkout pages' return URLs is kept, so
        every worker and restart accepts the pages of the others; without it (or when
        it cannot be written) the key lives as long as the process. `payments`: the
        dev provider's records (`DEV_PAYMENTS` unless given)."""
        self._base_url = base_url.rstrip("/")
        self._home = home
        self._key: bytes | None = None
        self.payments = DEV_PAYMENTS if payments is None else payments

    def _signing_key(self) -> bytes:
        # Read or made on first use only: commands that merely read make no file.
        if self._key is None:
            self._key = secrets.token_bytes(32)
            if self._home is not None:
                with contextlib.suppress(OSError):
                    self._key = load_or_create_key(self._home / CHECKOUT_KEY_FILE)
        return self._key

    def _signature(self, purchase_id: str, success_url: str, cancel_url: str) -> str:
        message = "\n".join((purchase_id, success_url, cancel_url)).encode()
        return hmac.new(self._signing_key(), message, hashlib.sha256).hexdigest()

    def return_urls(self, purchase_id: str, query: Mapping[str, str]) -> tuple[str, str] | None:
        """The (successUrl, cancelUrl) a checkout page of `purchase_id` was made with,
        from its query (`success`, `cancel`, `sig`); None unless this gateway signed
        exactly these: a page never redirects anywhere else."""
        success, cancel = query.get("success", ""), query.get("cancel", "")
        expected = self._signature(purchase_id, success, cancel)
        if not hmac.compare_digest(expected, query.get("sig", "")):
            return None
        return success, cancel

    async def ensure_customer(self, user_id: str, email: str | None) -> str:
        return f"cus_dev_{uuid.uuid5(uuid.NAMESPACE_URL, user_id).hex[:16]}"

    async def create_payment_intent(
        self,
        *,
        customer_id: str,
        amount_cents: int,
        purchase_id: str,
        metadata: Mapping[str, str],
    ) -> PaymentIntent:
        intent_id = f"pi_dev_{uuid.uuid4().hex}"
        return PaymentIntent(intent_id, f"{intent_id}_secret_dev", amount_cents, "eur")

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
        session_id = f"cs_dev_{uuid.uuid4().hex}"
        # The page returns to these after paying, as Stripe Checkout does; signed, so
        # the page cannot be made to send the browser anywhere else.
        signature = self._signature(purchase_id, success_url, cancel_url)
        query = urlencode({"success": success_url, "cancel": cancel_url, "sig": signature})
        return CheckoutSession(session_id, f"{self._base_url}/dev/checkout/{purchase_id}?{query}")

    async def refund(
        self,
        *,
        payment_intent_id: str,
        amount_cents: int,
        purchase_id: str,
        metadata: Mapping[str, str],
        attempt: int = 0,
    ) -> Refund:
        """Refunded locally (no money moved with the dev gateway): the same refund id
        for the same purchase (a dev refund never fails, so there is no next attempt)."""
        refund = self.payments.refund(payment_intent_id, amount_cents, purchase_id)
        return Refund(refund.id, payment_intent_id, refund.amount, refund.status)

    async def payment_state(self, ref: PaymentRef) -> PaymentState | None:
        if ref.payment_intent_id is None:
            return None
        return self.payments.state(ref.payment_intent_id)

    def verify_webhook(self, payload: bytes, signature: str) -> PaymentEvent:
        raise InvalidWebhook("Webhooks are not accepted by the dev payment gateway")

    async def close(self) -> None:
        return None


CHECKOUT_KEY_FILE = "dev-checkout.key"


def load_or_create_key(path: Path) -> bytes:
    """The 32-byte key in `path` (hex), made (mode 0600) when missing. Raises `OSError`.

    Made under a temporary name and linked into place, so processes racing to make it
    all end up with the one that won."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError as exc:
        raise OSError(f"{path} is not a key") from exc
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


def dev_payment(purchase: Purchase, payments: DevPayments = DEV_PAYMENTS) -> PaymentChanged:
    """Pay `purchase` with the dev provider: the payment is recorded in `payments`, and
    the event a successful Stripe payment would produce is returned for the use case.
    A purchase paid already is not paid again (its refunds, perhaps made in another
    process, stay what they are): the event then only reads the payment back."""
    intent_id = purchase.stripe_payment_intent_id or f"pi_dev_{purchase.id}"
    if purchase.status in (PurchaseStatus.PENDING, PurchaseStatus.FAILED):
        payments.pay(intent_id, purchase.price_euro_cents, purchase.id)
    return PaymentChanged(
        event_id=f"dev:{purchase.id}",
        type="payment_intent.succeeded",
        purchase_id=purchase.id,
        payment_intent_id=intent_id,
    )
