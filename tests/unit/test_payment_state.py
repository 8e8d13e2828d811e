"""The claw-back rule and the settlement of a purchase from a payment state; the
translation of Stripe's events and objects, in the shapes Stripe publishes."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mana_credits_adapters.payments.stripe_events import SUBSCRIBED_EVENTS, translate
from mana_credits_adapters.payments.stripe_state import payment_state
from mana_credits_core.payment_state import (
    DisputeState,
    PaymentState,
    RefundState,
    Settlement,
    clawback_target,
    settle,
)
from mana_credits_core.purchases import Acknowledged, PaymentChanged, Purchase, PurchaseStatus

ROOT = Path(__file__).resolve().parents[2]
PAID = PaymentState("pi_1", "succeeded", 1000, 1000, "eur", "p1", "ch_1")


def dispute(status: str, amount: int = 1000, **extra: object) -> DisputeState:
    fields: dict[str, object] = {"case_type": "chargeback", "funds_withdrawn": True} | extra
    return DisputeState("dp_1", "ch_1", amount, status, "fraudulent", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("refunds", "disputes", "target"),
    [
        ((), (), 0),
        ((RefundState("re_1", 300, "succeeded"),), (), 330),
        ((RefundState("re_1", 333, "succeeded"),), (), 366),  # 366.3: the fraction stays
        ((RefundState("re_1", 1000, "pending"),), (), 1100),
        ((RefundState("re_1", 1000, "failed"),), (), 0),
        ((RefundState("re_1", 1000, "canceled"),), (), 0),
        ((), (dispute("needs_response"),), 1100),
        ((), (dispute("under_review", 600),), 660),
        ((), (dispute("needs_response", funds_withdrawn=False),), 0),
        ((), (dispute("warning_needs_response", funds_withdrawn=False),), 0),
        ((), (dispute("needs_response", case_type="inquiry"),), 0),
        ((), (dispute("won", funds_withdrawn=False),), 0),
        ((), (dispute("warning_closed", funds_withdrawn=False),), 0),
        ((), (dispute("lost", 500, funds_withdrawn=False),), 550),
        ((RefundState("re_1", 800, "succeeded"),), (dispute("lost", 800),), 1100),  # capped
        # docs/payments.md's worked example: 3.33 € refunded, 6.00 € disputed, then won.
        ((RefundState("re_1", 333, "succeeded"),), (dispute("needs_response", 600),), 1026),
        ((RefundState("re_1", 333, "succeeded"),), (dispute("won", 600),), 366),
    ],
)
def test_the_clawback_target_follows_the_money_that_went_back(
    refunds: tuple[RefundState, ...], disputes: tuple[DisputeState, ...], target: int
) -> None:
    state = replace(PAID, refunds=refunds, disputes=disputes)
    assert clawback_target(1100, state) == target


def test_nothing_is_taken_back_of_a_payment_that_received_nothing() -> None:
    unpaid = replace(PAID, status="processing", amount_received=0)
    assert clawback_target(1100, unpaid) == 0


def purchase(status: PurchaseStatus, **changes: object) -> Purchase:
    made = Purchase(
        id="p1",
        user_id="alice",
        package_id="k",
        credits=1100,
        price_euro_cents=1000,
        stripe_payment_intent_id=None,
        stripe_checkout_session_id=None,
        stripe_customer_id="cus_1",
        status=status,
        metadata=None,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        completed_at=None,
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def test_settle_completes_fails_and_never_undoes_a_success() -> None:
    refunded = replace(PAID, refunds=(RefundState("re_1", 1000, "succeeded"),))
    assert settle(purchase(PurchaseStatus.PENDING), refunded) == Settlement(True, False, 1100)
    assert settle(purchase(PurchaseStatus.FAILED), PAID) == Settlement(True, False, 0)
    declined = replace(PAID, status="requires_payment_method", amount_received=0)
    assert settle(purchase(PurchaseStatus.PENDING), declined) == Settlement(False, False, 0)
    failed = replace(declined, payment_error=True)
    assert settle(purchase(PurchaseStatus.PENDING), failed) == Settlement(False, True, 0)
    cancelled = replace(declined, status="canceled")
    assert settle(purchase(PurchaseStatus.PENDING), cancelled) == Settlement(False, True, 0)
    assert settle(purchase(PurchaseStatus.COMPLETED), failed) == Settlement(False, False, 0)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"purchase_id": "p2"}, "the payment belongs to another purchase"),
        ({"amount": 999}, "amount or currency does not match the purchase"),
        ({"currency": "usd"}, "amount or currency does not match the purchase"),
    ],
)
def test_settle_ignores_a_payment_that_is_not_the_purchases(
    changes: dict[str, object], why: str
) -> None:
    state = replace(PAID, **changes)  # type: ignore[arg-type]
    assert settle(purchase(PurchaseStatus.PENDING), state) == f"ignored: {why}"


def test_settle_ignores_another_payment_intent() -> None:
    mine = purchase(PurchaseStatus.PENDING, stripe_payment_intent_id="pi_mine")
    assert settle(mine, PAID) == "ignored: payment intent does not match the purchase"


# Stripe's shapes: the dispute of Stripe's API reference example names its charge and
# has a null payment_intent; an inquiry carries its case type in payment_method_details.

DISPUTE = {
    "id": "dp_1MoqxHLgUG5tbmjcom3Mmh0p",
    "object": "dispute",
    "amount": 1000,
    "balance_transactions": [],
    "charge": "ch_1MoS30LgUG5tbmjcjfsQqpHI",
    "currency": "usd",
    "is_charge_refundable": True,
    "livemode": False,
    "metadata": {},
    "payment_intent": None,
    "payment_method_details": {"card": {"brand": "visa", "case_type": "inquiry"}, "type": "card"},
    "reason": "general",
    "status": "warning_needs_response",
}


def event(kind: str, obj: dict[str, object]) -> dict[str, object]:
    return {
        "id": "evt_1",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": 1,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def test_a_dispute_without_payment_intent_is_found_by_its_charge() -> None:
    assert translate(event("charge.dispute.created", DISPUTE)) == PaymentChanged(
        "evt_1", "charge.dispute.created", charge_id="ch_1MoS30LgUG5tbmjcjfsQqpHI"
    )


def test_expanded_and_unexpanded_references_name_the_same_objects() -> None:
    expanded = DISPUTE | {
        "charge": {"id": "ch_1", "object": "charge"},
        "payment_intent": {"id": "pi_1", "object": "payment_intent"},
    }
    changed = translate(event("charge.dispute.closed", expanded))
    assert changed == PaymentChanged(
        "evt_1", "charge.dispute.closed", payment_intent_id="pi_1", charge_id="ch_1"
    )
    session: dict[str, object] = {"id": "cs_1", "object": "checkout.session"}
    session |= {"payment_intent": "pi_1", "metadata": {}, "client_reference_id": "p1"}
    assert translate(event("checkout.session.async_payment_succeeded", session)) == (
        PaymentChanged(
            "evt_1",
            "checkout.session.async_payment_succeeded",
            "p1",
            payment_intent_id="pi_1",
            checkout_session_id="cs_1",
        )
    )


def test_unknown_or_unusable_events_are_acknowledged() -> None:
    assert translate(event("customer.created", {"id": "cus_1"})) == Acknowledged(
        "evt_1", "customer.created"
    )
    assert translate(event("charge.dispute.created", {"id": "dp_1"})) == Acknowledged(
        "evt_1", "charge.dispute.created"
    )
    assert translate({"type": "charge.refunded"}) == Acknowledged("", "charge.refunded")


def test_an_inquiry_from_stripes_example_takes_nothing() -> None:
    intent = {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 1000,
        "amount_received": 1000,
        "currency": "eur",
        "status": "succeeded",
        "latest_charge": {"id": "ch_1MoS30LgUG5tbmjcjfsQqpHI", "object": "charge"},
        "last_payment_error": None,
        "metadata": {"purchaseId": "p1"},
    }
    state = payment_state(intent, [], [DISPUTE])
    assert state.charge_id == "ch_1MoS30LgUG5tbmjcjfsQqpHI"
    assert state.disputes[0].inquiry
    assert (state.purchase_id, state.disputed, clawback_target(1100, state)) == ("p1", 0, 0)
    withdrawn = {"object": "balance_transaction", "amount": -1000, "currency": "eur"}
    chargeback = DISPUTE | {
        "status": "needs_response",
        "payment_method_details": {"card": {"case_type": "chargeback"}, "type": "card"},
        "balance_transactions": [withdrawn],
    }
    assert clawback_target(1100, payment_state(intent, [], [chargeback])) == 1100
    reinstated = withdrawn | {"amount": 1000}
    won = chargeback | {"status": "won", "balance_transactions": [withdrawn, reinstated]}
    assert clawback_target(1100, payment_state(intent, [], [won])) == 0


def test_the_docs_list_exactly_the_event_types_to_subscribe_to() -> None:
    text = (ROOT / "docs" / "payments.md").read_text()
    section = text.split("## Webhook endpoint", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)`", section)
    assert sorted(listed) == sorted(SUBSCRIBED_EVENTS)
