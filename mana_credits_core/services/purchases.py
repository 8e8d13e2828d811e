"""Use cases for buying credits: packages, purchases, and payment events."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .. import validation as v
from ..errors import InvalidInput, PackageNotFound, PurchaseNotFound, PurchaseNotRefundable
from ..events import EventKind, Events
from ..ports import Clock, IdGenerator, PaymentGateway, Store
from ..purchases import PaymentEvent, PaymentRef, Purchase, PurchaseStatus, Refund
from .lookups import PurchaseLookups
from .packages import MAX_PRICE_CENTS as MAX_PRICE_CENTS
from .packages import PackageCatalogue
from .payment_sync import PaymentSync

MAX_URL = 2048


@dataclass(frozen=True, slots=True)
class RefundResult:
    """An operator's refund: the purchase after it, the provider's refund (None when
    nothing was left to refund) and what the claw-back did."""

    purchase: Purchase
    refund: Refund | None
    outcome: str


@dataclass(frozen=True, slots=True)
class StartedPurchase:
    """A pending purchase and what the client needs to pay for it."""

    purchase: Purchase
    client_secret: str | None = None
    checkout_url: str | None = None


class PurchasesService(PackageCatalogue, PurchaseLookups):
    """Sells packages through the payment gateway and credits each payment once.

    A purchase is settled from its payment's current state whenever a verified
    payment event names it (`PaymentSync`): completed once the payment succeeded (the
    status transition pending/failed → completed and the ledger's idempotency key
    `purchase:<id>` each make the credit happen exactly once), its credits taken
    back in proportion to the money refunded or lost in disputes, and given back when
    a refund fails or a dispute is won. What the balance cannot cover becomes debt,
    collected from the next top-up.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        payments: PaymentGateway,
        events: Events | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._payments = payments
        self._events = events or Events()
        self._sync = PaymentSync(store, clock, ids, payments, self._events)

    # Purchases.

    async def start(
        self,
        user_id: str,
        package_id: str,
        *,
        email: str | None = None,
        success_url: str | None = None,
        cancel_url: str | None = None,
    ) -> StartedPurchase:
        """Start buying a package: a PaymentIntent, or Checkout when URLs are given.

        The provider is called before anything is written, so a provider failure
        leaves no purchase behind.
        """
        user_id = v.identifier(user_id, "userId")
        package_id = v.identifier(package_id, "packageId")
        urls = None
        if success_url is not None or cancel_url is not None:
            urls = (_url(success_url, "successUrl"), _url(cancel_url, "cancelUrl"))
        async with self._store.unit_of_work() as uow:
            package = await uow.packages.get(package_id)
            customer_id = await uow.customers.get(user_id)
        if package is None or not package.active:
            raise PackageNotFound()
        if customer_id is None:
            customer_id = await self._payments.ensure_customer(user_id, email)
            async with self._store.unit_of_work() as uow:
                customer_id = await uow.customers.add(user_id, customer_id, self._clock.now())
                await uow.commit()
        purchase_id = self._ids.new_id()
        metadata = {"purchaseId": purchase_id, "userId": user_id, "packageId": package.id}
        started: StartedPurchase
        purchase = Purchase(
            id=purchase_id,
            user_id=user_id,
            package_id=package.id,
            credits=package.credits,
            price_euro_cents=package.price_euro_cents,
            stripe_payment_intent_id=None,
            stripe_checkout_session_id=None,
            stripe_customer_id=customer_id,
            status=PurchaseStatus.PENDING,
            metadata={"packageName": package.name},
            created_at=self._clock.now(),
            completed_at=None,
        )
        if urls is not None:
            session = await self._payments.create_checkout_session(
                customer_id=customer_id,
                amount_cents=package.price_euro_cents,
                purchase_id=purchase_id,
                product_name=f"{package.name}: {package.credits} credits",
                success_url=urls[0],
                cancel_url=urls[1],
                metadata=metadata,
            )
            purchase = replace(purchase, stripe_checkout_session_id=session.id)
            started = StartedPurchase(purchase, checkout_url=session.url)
        else:
            intent = await self._payments.create_payment_intent(
                customer_id=customer_id,
                amount_cents=package.price_euro_cents,
                purchase_id=purchase_id,
                metadata=metadata,
            )
            purchase = replace(purchase, stripe_payment_intent_id=intent.id)
            started = StartedPurchase(purchase, client_secret=intent.client_secret)
        async with self._store.unit_of_work() as uow:
            await uow.purchases.add(purchase)
            await uow.commit()
        self._events.emit(
            EventKind.PURCHASE_CREATED,
            credits=purchase.credits,
            euro_cents=purchase.price_euro_cents,
        )
        return started

    async def purchases(self, user_id: str, limit: int = 50) -> list[Purchase]:
        user_id = v.identifier(user_id, "userId")
        async with self._store.unit_of_work() as uow:
            return await uow.purchases.list_for_user(user_id, v.page_size(limit))

    async def purchase(self, user_id: str, purchase_id: str) -> Purchase:
        """One of the user's purchases; another user's is reported as not found."""
        async with self._store.unit_of_work() as uow:
            found = await uow.purchases.get(v.identifier(purchase_id, "purchaseId"))
        if found is None or found.user_id != user_id:
            raise PurchaseNotFound()
        return found

    async def get(self, purchase_id: str) -> Purchase:
        async with self._store.unit_of_work() as uow:
            found = await uow.purchases.get(v.identifier(purchase_id, "purchaseId"))
        if found is None:
            raise PurchaseNotFound()
        return found

    async def all_purchases(
        self,
        limit: int = 50,
        *,
        user_id: str | None = None,
        status: str | None = None,
        clawed_back: bool = False,
    ) -> list[Purchase]:
        """Every user's purchases, newest first, at most `limit` (operators); optionally
        one user's, one status's, and with `clawed_back` only those whose credits were
        taken back in part or in full (refunds, disputes). Raises `InvalidInput` for an
        unknown status, a bad user id or limit."""
        user = None if user_id is None else v.identifier(user_id, "userId")
        wanted = None
        if status is not None:
            if status not in PurchaseStatus.__members__.values():
                raise InvalidInput("status", f"status must be one of {', '.join(PurchaseStatus)}")
            wanted = PurchaseStatus(status)
        async with self._store.reader() as uow:
            return await uow.reports.purchases(
                v.page_size(limit), user_id=user, status=wanted, clawed_back=clawed_back
            )

    async def refund(self, purchase_id: str, reason: str, operator: str) -> RefundResult:
        """Refund a completed purchase in full through the payment gateway, then settle
        it from the payment's state exactly as the provider's refund event would (the
        credits taken back, what the balance cannot cover as debt). Idempotent: a
        purchase whose credits were all taken back already changes nothing and calls
        no gateway.

        Raises `PurchaseNotFound`, `PurchaseNotRefundable` (not completed, or no
        payment to refund), `PaymentProviderError`.
        """
        note = {
            "operator": v.identifier(operator, "operator", 255),
            "reason": v.text(reason, "reason", v.MAX_REASON, multiline=False),
        }
        purchase = await self.get(purchase_id)
        if purchase.clawed_back >= purchase.credits:
            return RefundResult(purchase, None, "already refunded: nothing changed")
        if purchase.status != PurchaseStatus.COMPLETED:
            raise PurchaseNotRefundable(f"purchase is {purchase.status}, only completed ones")
        if purchase.stripe_payment_intent_id is None:
            raise PurchaseNotRefundable("purchase has no payment to refund")
        refund = await self._payments.refund(
            payment_intent_id=purchase.stripe_payment_intent_id,
            amount_cents=purchase.price_euro_cents,
            purchase_id=purchase.id,
            metadata=note | {"purchaseId": purchase.id},
            # Each move of the claw-back is a new attempt: after a failed refund gave
            # the credits back, refunding again must reach the provider again.
            attempt=purchase.clawback_version,
        )
        outcome = await self._sync.reconcile(
            PaymentRef(purchase.stripe_payment_intent_id, purchase.stripe_charge_id),
            purchase_id=purchase.id,
            note=note | {"refundId": refund.id},
        )
        return RefundResult(await self.get(purchase.id), refund, outcome)

    # Payment events.

    async def handle(self, event: PaymentEvent) -> str:
        """Apply a verified payment event; returns what happened, for the log.

        The event only names a payment: its purchase is settled from the payment's
        current state at the provider (`PaymentSync`), so duplicates, concurrent and
        out-of-order deliveries all end in the same place. Payments of no purchase
        of ours are logged and ignored, never credited. Raises
        `PaymentProviderUnavailable`, `StoreUnavailable` (deliver it again later).
        """
        return await self._sync.handle(event)

    async def reconcile(self, purchase_id: str) -> str:
        """Settle one purchase from its payment's current state at the provider, as an
        event would (operators: after a missed event). Raises `PurchaseNotFound`,
        `PaymentProviderUnavailable`, `PaymentProviderError`."""
        purchase = await self.get(purchase_id)
        ref = PaymentRef(
            purchase.stripe_payment_intent_id,
            purchase.stripe_charge_id,
            purchase.stripe_checkout_session_id,
        )
        return await self._sync.reconcile(ref, purchase_id=purchase.id)


def _url(value: str | None, field: str) -> str:
    if value is None:
        raise InvalidInput(field, f"{field} is required with Checkout")
    url = v.identifier(value, field, MAX_URL)
    if not url.startswith(("https://", "http://")):
        raise InvalidInput(field, f"{field} must be an http(s) URL")
    return url
