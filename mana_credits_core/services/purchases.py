"""Use cases for buying credits: packages, purchases, and payment events."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

from .. import validation as v
from ..errors import InvalidInput, PackageNotFound, PurchaseNotFound, PurchaseNotRefundable
from ..events import Event, EventKind, Events
from ..ledger import Credit, Debit, TransactionType
from ..ports import Clock, IdGenerator, PaymentGateway, Store, UnitOfWork
from ..purchases import (
    CURRENCY,
    Acknowledged,
    CheckoutCompleted,
    PaymentDisputed,
    PaymentEvent,
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    Purchase,
    PurchaseStatus,
    Refund,
    clawback_target,
)
from .lookups import PurchaseLookups
from .packages import MAX_PRICE_CENTS as MAX_PRICE_CENTS
from .packages import PackageCatalogue

log = logging.getLogger("mana_credits.purchases")

PAYMENTS_APP = "payments"
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

    A purchase is completed by a verified payment event: the status transition
    (pending/failed → completed) and the ledger's idempotency key
    `purchase:<id>` each make the credit happen exactly once, whichever event or
    delivery arrives first. Refunds and disputes claw credits back once; what the
    balance cannot cover becomes debt, collected from the next top-up.
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
        """Refund a completed purchase in full through the payment gateway, then take
        its credits back exactly as the provider's refund event would (what the
        balance cannot cover becomes debt). Idempotent: a purchase whose credits were
        all taken back already changes nothing and calls no gateway.

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
        )
        outcome = await self.handle(
            PaymentRefunded(
                event_id=f"refund:{refund.id}",
                payment_intent_id=purchase.stripe_payment_intent_id,
                refunded=purchase.price_euro_cents,
                amount=purchase.price_euro_cents,
                note=note | {"refundId": refund.id},
            )
        )
        return RefundResult(await self.get(purchase.id), refund, outcome)

    # Payment events.

    async def handle(self, event: PaymentEvent) -> str:
        """Apply a verified payment event; returns what happened, for the log.

        Safe under duplicate, concurrent and out-of-order delivery. Events that do
        not match a purchase this service created (amount, currency, ids) are
        logged and ignored, never credited.
        """
        async with self._store.unit_of_work() as uow:
            first = await uow.payment_events.record(
                event.event_id, type(event).__name__, self._clock.now()
            )
            if not first:
                return "duplicate event"
            happened: list[Event] = []
            outcome = await self._apply(uow, event, happened)
            await uow.commit()
        self._events.emit_all(happened)
        if outcome.startswith("ignored"):
            log.warning("payment event %s %s", event.event_id, outcome)
        return outcome

    async def _apply(self, uow: UnitOfWork, event: PaymentEvent, happened: list[Event]) -> str:
        match event:
            case PaymentSucceeded():
                purchase = await _purchase_for(uow, event.purchase_id, event.payment_intent_id)
                if purchase is None:
                    return "ignored: no such purchase"
                if purchase.stripe_payment_intent_id not in (None, event.payment_intent_id):
                    return "ignored: payment intent does not match the purchase"
                if (event.amount, event.currency) != (purchase.price_euro_cents, CURRENCY):
                    return "ignored: amount or currency does not match the purchase"
                return await self._complete(uow, purchase, event.payment_intent_id, happened)
            case CheckoutCompleted():
                purchase = await _purchase_for(uow, event.purchase_id, None)
                if purchase is None or purchase.stripe_checkout_session_id != event.session_id:
                    return "ignored: no such checkout purchase"
                if not event.paid:
                    return "acknowledged: checkout not paid yet"
                if (event.amount, event.currency) != (purchase.price_euro_cents, CURRENCY):
                    return "ignored: amount or currency does not match the purchase"
                return await self._complete(uow, purchase, event.payment_intent_id, happened)
            case PaymentFailed():
                purchase = await _purchase_for(uow, event.purchase_id, event.payment_intent_id)
                if purchase is None:
                    return "ignored: no such purchase"
                failed = await uow.purchases.fail(purchase.id)
                if not failed:
                    return "acknowledged: purchase not pending"
                happened.append(
                    Event(EventKind.PURCHASE_FAILED, purchase.credits, purchase.price_euro_cents)
                )
                return "failed"
            case PaymentRefunded():
                purchase = await uow.purchases.by_payment_intent(event.payment_intent_id)
                if purchase is None or purchase.status != PurchaseStatus.COMPLETED:
                    return "ignored: no completed purchase for this payment"
                target = clawback_target(purchase, event.refunded, event.amount)
                return await self._claw_back(uow, purchase, target, "refund", happened, event.note)
            case PaymentDisputed():
                purchase = await uow.purchases.by_payment_intent(event.payment_intent_id)
                if purchase is None or purchase.status != PurchaseStatus.COMPLETED:
                    return "ignored: no completed purchase for this payment"
                return await self._claw_back(uow, purchase, purchase.credits, "dispute", happened)
            case Acknowledged():
                return f"acknowledged: {event.type}"

    async def _complete(
        self,
        uow: UnitOfWork,
        purchase: Purchase,
        payment_intent_id: str | None,
        happened: list[Event],
    ) -> str:
        now = self._clock.now()
        done = await uow.purchases.complete(purchase.id, payment_intent_id, now)
        if done is None:
            return "acknowledged: already completed"
        await uow.balances.credit(
            Credit(
                entry_id=self._ids.new_id(),
                user_id=done.user_id,
                amount=done.credits,
                type=TransactionType.PURCHASE,
                app_id=PAYMENTS_APP,
                description=f"Purchase of {done.credits} credits",
                metadata={"purchaseId": done.id, "packageId": done.package_id},
                idempotency_key=f"purchase:{done.id}",
                now=now,
            )
        )
        await uow.balances.collect_debt(self._debit(done, 0, "Debt from an earlier clawback"))
        happened.append(Event(EventKind.PURCHASE_COMPLETED, done.credits, done.price_euro_cents))
        return "credited"

    async def _claw_back(
        self,
        uow: UnitOfWork,
        purchase: Purchase,
        target: int,
        why: str,
        happened: list[Event],
        note: Mapping[str, str] | None = None,
    ) -> str:
        increase = await uow.purchases.raise_clawback(purchase.id, target)
        if increase <= 0:
            return "acknowledged: already clawed back"
        debit = self._debit(purchase, increase, f"Credits taken back after a payment {why}")
        if note:
            debit = replace(debit, metadata={"purchaseId": purchase.id, **note})
        _entry, debt = await uow.balances.claw_back(debit)
        # Credits the purchase gave that were taken back, whether from the balance or as debt.
        happened.append(Event(EventKind.PURCHASE_CLAWED_BACK, increase))
        return f"clawed back {increase - debt}, debt {debt}"

    def _debit(self, purchase: Purchase, amount: int, description: str) -> Debit:
        return Debit(
            entry_id=self._ids.new_id(),
            user_id=purchase.user_id,
            amount=amount,
            app_id=PAYMENTS_APP,
            description=description,
            metadata={"purchaseId": purchase.id},
            idempotency_key=None,
            now=self._clock.now(),
            type=TransactionType.CLAWBACK,
        )


async def _purchase_for(
    uow: UnitOfWork, purchase_id: str | None, payment_intent_id: str | None
) -> Purchase | None:
    if purchase_id is not None:
        return await uow.purchases.get(purchase_id)
    if payment_intent_id is not None:
        return await uow.purchases.by_payment_intent(payment_intent_id)
    return None


def _url(value: str | None, field: str) -> str:
    if value is None:
        raise InvalidInput(field, f"{field} is required with Checkout")
    url = v.identifier(value, field, MAX_URL)
    if not url.startswith(("https://", "http://")):
        raise InvalidInput(field, f"{field} must be an http(s) URL")
    return url
