"""Bringing a purchase in line with its payment as the provider knows it now.

Every payment event is a hint: the purchase it names is looked up, the payment is read
from the provider (`PaymentGateway.payment_state`), and `settle` says where the purchase
must be: completed (credited once), failed, and how many of its credits taken back. The
purchase then moves there in one transaction, whatever order the events came in.

Two reads of the provider may race (one before a refund failed, one after). Whoever
changed the purchase reads the payment again after committing and settles once more if
it changed meanwhile, so the last committed change always follows a read made after it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ..events import Event, EventKind, Events
from ..ledger import Credit, Debit, TransactionType
from ..payment_state import PaymentState, Settlement, settle
from ..ports import Clock, IdGenerator, PaymentGateway, Store, UnitOfWork
from ..purchases import Acknowledged, PaymentEvent, PaymentRef, Purchase, PurchaseStatus

log = logging.getLogger("mana_credits.purchases")

PAYMENTS_APP = "payments"
MAX_ROUNDS = 5  # settle, read again, settle again while the payment keeps changing
KEY_SEPARATOR = "\x1f"  # client idempotency keys cannot hold it (validation.idempotency_key)


def clawback_key(purchase_id: str, version: int) -> str:
    """The ledger idempotency key of a purchase's claw-back move number `version`."""
    return KEY_SEPARATOR.join(("clawback", purchase_id, str(version)))


@dataclass(slots=True)
class _Round:
    """What one settlement did: for the log and, after commit, the observers."""

    changes: list[str] = field(default_factory=list)
    happened: list[Event] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return "; ".join(self.changes)


class PaymentSync:
    """Settles purchases from their payment's current state (see the module)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        payments: PaymentGateway,
        events: Events,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._payments = payments
        self._events = events

    async def handle(self, event: PaymentEvent) -> str:
        """Apply a verified payment event; returns what happened, for the log.

        An event already processed is skipped; any other reads the payment it names
        and settles its purchase (`reconcile`). Events for payments that belong to no
        purchase of ours are recorded and ignored. Raises `PaymentProviderUnavailable`
        or `StoreUnavailable` (nothing recorded: the provider delivers it again).
        """
        if isinstance(event, Acknowledged):
            async with self._store.unit_of_work() as uow:
                await uow.payment_events.record(event.event_id, event.type, self._clock.now())
                await uow.commit()
            return f"acknowledged: {event.type}"
        async with self._store.reader() as reader:
            if await reader.payment_events.seen(event.event_id):
                return "duplicate event"
        outcome = await self.reconcile(
            event.ref, purchase_id=event.purchase_id, event=(event.event_id, event.type)
        )
        if outcome.startswith("ignored"):
            log.warning("payment event %s %s", event.event_id, outcome)
        return outcome

    async def reconcile(
        self,
        ref: PaymentRef,
        *,
        purchase_id: str | None = None,
        event: tuple[str, str] | None = None,
        note: Mapping[str, str] | None = None,
    ) -> str:
        """Settle the purchase of the payment `ref` names (or of `purchase_id`) from the
        payment's current state; returns what changed ("unchanged: …" when nothing did).

        `event` (id, type) is recorded as processed only at the end, once a read of
        the payment made after the last change agrees with it: if anything fails before
        (the provider or the store), the event stays unrecorded and its redelivery
        settles again from the state then. `note` goes on the claw-back entry it writes,
        if any. Idempotent.
        """
        purchase = await self._find(ref, purchase_id)
        state: PaymentState | None = None
        if purchase is None:
            # Known by a charge or PaymentIntent not linked yet: the provider's record
            # of the payment names the purchase.
            state = await self._payments.payment_state(ref)
            if state is not None:
                purchase = await self._find(
                    PaymentRef(state.payment_intent_id, state.charge_id), state.purchase_id
                )
        if purchase is None:
            await self._record(event)
            return "ignored: no such purchase"
        ref = _own_ref(purchase, ref)
        if state is None:
            state = await self._payments.payment_state(ref)
        if state is None:
            await self._record(event)
            if purchase.status is PurchaseStatus.PENDING:
                return "unchanged: pending, no payment at the provider yet"
            # Paid once, unknown to the provider now (the dev gateway keeps payments in
            # the process that took them): say what stands, not that nothing was paid.
            return (
                f"unchanged: {await self._summary(purchase.id)}"
                " (the payment provider has no record of its payment)"
            )
        outcomes: list[str] = []
        for _ in range(MAX_ROUNDS):
            done = await self._settle(purchase.id, state, note)
            note = None
            if done.changes:
                outcomes.append(done.outcome)
            if not done.changes or done.outcome.startswith("ignored"):
                break
            again = await self._payments.payment_state(PaymentRef(state.payment_intent_id))
            if again is None or again == state:
                break
            state = again
        await self._record(event)
        if not outcomes:
            return f"unchanged: {await self._summary(purchase.id)}"
        return "; ".join(outcomes)

    async def _find(self, ref: PaymentRef, purchase_id: str | None) -> Purchase | None:
        async with self._store.reader() as uow:
            if purchase_id is not None:
                found = await uow.purchases.get(purchase_id)
                if found is not None:
                    return found
            if ref.payment_intent_id is not None:
                found = await uow.purchases.by_payment_intent(ref.payment_intent_id)
                if found is not None:
                    return found
            if ref.charge_id is not None:
                found = await uow.purchases.by_charge(ref.charge_id)
                if found is not None:
                    return found
            if ref.checkout_session_id is not None:
                return await uow.purchases.by_checkout_session(ref.checkout_session_id)
        return None

    async def _record(self, event: tuple[str, str] | None) -> None:
        if event is None:
            return
        async with self._store.unit_of_work() as uow:
            await uow.payment_events.record(event[0], event[1], self._clock.now())
            await uow.commit()

    async def _summary(self, purchase_id: str) -> str:
        async with self._store.reader() as uow:
            found = await uow.purchases.get(purchase_id)
        if found is None:
            return "no such purchase"
        return f"{found.status.value}, {found.clawed_back} of {found.credits} clawed back"

    async def _settle(
        self,
        purchase_id: str,
        state: PaymentState,
        note: Mapping[str, str] | None,
    ) -> _Round:
        done = _Round()
        async with self._store.unit_of_work() as uow:
            purchase = await uow.purchases.lock(purchase_id)
            if purchase is None:
                done.changes.append("ignored: no such purchase")
                await uow.commit()
                return done
            plan = settle(purchase, state)
            if isinstance(plan, str):
                done.changes.append(plan)
                await uow.commit()
                return done
            if purchase.stripe_payment_intent_id is None or (
                purchase.stripe_charge_id is None and state.charge_id is not None
            ):
                await uow.purchases.link(purchase.id, state.payment_intent_id, state.charge_id)
            await self._apply(uow, purchase, plan, state, note, done)
            await uow.commit()
        self._events.emit_all(done.happened)
        return done

    async def _apply(
        self,
        uow: UnitOfWork,
        purchase: Purchase,
        plan: Settlement,
        state: PaymentState,
        note: Mapping[str, str] | None,
        done: _Round,
    ) -> None:
        if plan.fail and await uow.purchases.fail(purchase.id):
            done.changes.append("failed")
            done.happened.append(
                Event(EventKind.PURCHASE_FAILED, purchase.credits, purchase.price_euro_cents)
            )
        completed = None
        if plan.complete:
            completed = await self._complete(uow, purchase, state, done)
            purchase = completed or purchase
        if purchase.status == PurchaseStatus.COMPLETED and plan.clawed_back != purchase.clawed_back:
            await self._move(uow, purchase, plan.clawed_back, state, note, done)
        if completed is not None:
            # After the claw-back: credits of a purchase refunded before it completed
            # never pay an older debt only to be owed again.
            await uow.balances.collect_debt(
                self._debit(completed, 0, "Debt from an earlier clawback", None)
            )

    async def _complete(
        self, uow: UnitOfWork, purchase: Purchase, state: PaymentState, done: _Round
    ) -> Purchase | None:
        now = self._clock.now()
        completed = await uow.purchases.complete(purchase.id, state.payment_intent_id, now)
        if completed is None:
            return None
        await uow.balances.credit(
            Credit(
                entry_id=self._ids.new_id(),
                user_id=completed.user_id,
                amount=completed.credits,
                type=TransactionType.PURCHASE,
                app_id=PAYMENTS_APP,
                description=f"Purchase of {completed.credits} credits",
                metadata={"purchaseId": completed.id, "packageId": completed.package_id},
                idempotency_key=f"purchase:{completed.id}",
                now=now,
                purchase_id=completed.id,
            )
        )
        done.changes.append("credited")
        done.happened.append(
            Event(EventKind.PURCHASE_COMPLETED, completed.credits, completed.price_euro_cents)
        )
        return completed

    async def _move(
        self,
        uow: UnitOfWork,
        purchase: Purchase,
        target: int,
        state: PaymentState,
        note: Mapping[str, str] | None,
        done: _Round,
    ) -> None:
        version = purchase.clawback_version + 1
        if not await uow.purchases.move_clawback(purchase.id, purchase.clawback_version, target):
            return  # another transaction moved it first (the row lock makes this rare)
        key = clawback_key(purchase.id, version)
        why = {
            "purchaseId": purchase.id,
            "paidEuroCents": state.amount_received,
            "refundedEuroCents": state.refunded,
            "disputedEuroCents": state.disputed,
            "clawedBack": target,
        } | dict(note or {})
        change = target - purchase.clawed_back
        if change > 0:
            debit = self._debit(
                purchase, change, "Credits taken back: payment refunded or disputed", key
            )
            _entry, debt = await uow.balances.claw_back(replace(debit, metadata=why))
            done.changes.append(f"clawed back {change - debt}, debt {debt}")
            done.happened.append(Event(EventKind.PURCHASE_CLAWED_BACK, change))
            return
        _given, paid = await uow.balances.reinstate(
            Credit(
                entry_id=self._ids.new_id(),
                user_id=purchase.user_id,
                amount=-change,
                type=TransactionType.REINSTATEMENT,
                app_id=PAYMENTS_APP,
                description="Credits given back: a refund failed or a dispute was won",
                metadata=why,
                idempotency_key=key,
                now=self._clock.now(),
            )
        )
        done.changes.append(f"gave back {-change - paid}, debt paid {paid}")
        done.happened.append(Event(EventKind.PURCHASE_REINSTATED, -change))

    def _debit(self, purchase: Purchase, amount: int, description: str, key: str | None) -> Debit:
        return Debit(
            entry_id=self._ids.new_id(),
            user_id=purchase.user_id,
            amount=amount,
            app_id=PAYMENTS_APP,
            description=description,
            metadata={"purchaseId": purchase.id},
            idempotency_key=key,
            now=self._clock.now(),
            type=TransactionType.CLAWBACK,
            purchase_id=purchase.id,
        )


def _own_ref(purchase: Purchase, ref: PaymentRef) -> PaymentRef:
    """The purchase's own ids first: the event may name only a charge or a session."""
    return PaymentRef(
        purchase.stripe_payment_intent_id or ref.payment_intent_id,
        purchase.stripe_charge_id or ref.charge_id,
        purchase.stripe_checkout_session_id or ref.checkout_session_id,
    )
