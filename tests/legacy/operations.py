"""The old service's operations (purchases, debits, gifts, subscriptions) as rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .book import Book, Row, at

STARTER, PLUS, PRO, MAX, LAUNCH = (f"9a000000-0000-4000-8000-{n:012d}" for n in range(1, 6))
PACKAGES = {
    # id: (name, description, credits, price in euro cents, Stripe price, active, order)
    STARTER: ("Starter", "500 credits", 500, 500, "price_legacy_starter", True, 1),
    PLUS: ("Plus", "1,100 credits (10% bonus)", 1100, 1000, "price_legacy_plus", True, 2),
    PRO: ("Pro", "2,875 credits (15% bonus)", 2875, 2500, "price_legacy_pro", True, 3),
    MAX: ("Max", "6,000 credits (20% bonus)", 6000, 5000, "price_legacy_max", True, 4),
    LAUNCH: ("Launch offer", "1,500 credits for 10 euros", 1500, 1000, None, False, 0),
}

SHORT_URL = "https://mana.how/g/"


class Legacy(Book):
    """The old service's operations above the bookkeeping."""

    def __init__(self, *, newest: bool) -> None:
        super().__init__(newest=newest)
        self.ids: dict[str, str] = {}
        for package_id, (name, text, credits, price, stripe, active, order) in PACKAGES.items():
            self.add(
                "packages",
                {
                    "id": package_id,
                    "name": name,
                    "description": text,
                    "credits": credits,
                    "price_euro_cents": price,
                    "stripe_price_id": stripe,
                    "active": active,
                    "sort_order": order,
                    "metadata": {"badge": "launch"} if package_id == LAUNCH else None,
                    "created_at": at("2026-01-01 00:00"),
                    "updated_at": at("2026-03-31 23:00" if not active else "2026-01-01 00:00"),
                },
            )

    def customer(self, user_id: str, email: str, when: datetime) -> str:
        customer_id = f"cus_legacy_{user_id.removeprefix('u-')}"
        self.add(
            "stripe_customers",
            {
                "user_id": user_id,
                "stripe_customer_id": customer_id,
                "email": email,
                "created_at": when,
                "updated_at": when,
            },
        )
        return customer_id

    def purchase(
        self,
        user_id: str,
        package_id: str | None,
        when: datetime,
        intent: str,
        *,
        status: str = "completed",
        customer: str | None = None,
        credits: int | None = None,
        price: int | None = None,
        credited: tuple[datetime, ...] | None = None,
        intent_only: bool = False,
    ) -> str:
        """A purchase and, once its payment completed, its `purchase` transaction(s) (a
        webhook delivered twice credits twice). `intent_only`: the older metadata, which
        names the payment intent but not the purchase."""
        name, credits_, price_ = "Custom", credits or 0, price or 0
        if package_id is not None:
            name, _, credits_, price_, *_ = PACKAGES[package_id]
        purchase_id = self.new_id("purchases")
        completed = status == "completed"
        credit_times = credited or ((when.replace(second=30),) if completed else ())
        self.add(
            "purchases",
            {
                "id": purchase_id,
                "user_id": user_id,
                "package_id": package_id,
                "credits": credits_,
                "price_euro_cents": price_,
                "stripe_payment_intent_id": intent,
                "stripe_customer_id": customer,
                "status": status,
                "metadata": {"packageName": name},
                "created_at": when,
                "completed_at": credit_times[0] if completed else None,
            },
        )
        metadata: dict[str, Any] = {"paymentIntentId": intent}
        if not intent_only:
            metadata = {"purchaseId": purchase_id, **metadata}
        for moment in credit_times:
            self.entry(
                user_id,
                "purchase",
                credits_,
                "stripe",
                f"Purchased {name} ({credits_} credits)",
                moment,
                metadata=metadata,
            )
        return purchase_id

    def use(self, user_id: str, app_id: str, amount: int, when: str, key: str | None = None) -> str:
        """An app's debit (a `usage` transaction and its usage_stats row)."""
        return self.entry(user_id, "usage", -amount, app_id, f"{app_id} usage", at(when), key=key)

    def sync_charge(self, user_id: str, amount: int, when: str) -> str:
        return self.entry(
            user_id, "usage", -amount, "sync", "Cloud Sync", at(when), metadata={"sync": True}
        )

    def grant(self, user_id: str, amount: int, reason: str, reference: str, when: str) -> str:
        return self.entry(
            user_id,
            "grant",
            amount,
            "community",
            reason,
            at(when),
            metadata={"reason": reason, "referenceId": reference},
        )

    def make_gift(
        self,
        creator_id: str,
        code: str,
        credits: int,
        when: str,
        *,
        creator_name: str | None,
        expires_at: str | None,
        target_email: str | None = None,
        message: str | None = None,
    ) -> Row:
        """A gift code: the creator's credits leave at once (a negative `gift` entry)."""
        gift_id = self.new_id("gift_codes")
        created = at(when)
        entry_id = self.entry(
            creator_id,
            "gift",
            -credits,
            "gifts",
            f"Gift code {code}",
            created,
            metadata={"giftCodeId": gift_id, "code": code},
        )
        return self.add(
            "gift_codes",
            {
                "id": gift_id,
                "code": code,
                "short_url": SHORT_URL + code,
                "creator_id": creator_id,
                "creator_name": creator_name,
                "total_credits": credits,
                "redeemed": 0,
                "type": "personalized" if target_email else "simple",
                "status": "active",
                "target_email": target_email,
                "message": message,
                "expires_at": at(expires_at) if expires_at else None,
                "reservation_transaction_id": entry_id,
                "created_at": created,
                "updated_at": created,
            },
        )

    def redeem(self, gift: Row, user_id: str, when: str, status: str = "success") -> str:
        """One redemption attempt; a successful one credits the redeemer."""
        moment = at(when)
        entry_id = None
        if status == "success":
            entry_id = self.entry(
                user_id,
                "gift",
                gift["total_credits"],
                "gifts",
                f"Redeemed gift code {gift['code']}",
                moment,
                metadata={"giftCodeId": gift["id"], "code": gift["code"]},
            )
            gift.update(redeemed=1, status="depleted", updated_at=moment)
        redemption_id = self.new_id("gift_redemptions")
        self.add(
            "gift_redemptions",
            {
                "id": redemption_id,
                "gift_code_id": gift["id"],
                "redeemer_user_id": user_id,
                "status": status,
                "credits_received": gift["total_credits"] if entry_id else 0,
                "credit_transaction_id": entry_id,
                "source_app_id": "web",
                "created_at": moment,
            },
        )
        return redemption_id

    def cancel_gift(self, gift: Row, when: str) -> str:
        """The creator cancelled: the credits come back as a `refund` entry."""
        moment = at(when)
        gift.update(status="cancelled", updated_at=moment)
        return self.entry(
            gift["creator_id"],
            "refund",
            gift["total_credits"],
            "gifts",
            f"Gift code {gift['code']} cancelled",
            moment,
            metadata={"giftCodeId": gift["id"], "code": gift["code"]},
        )

    def subscription(
        self,
        user_id: str,
        *,
        active: bool,
        interval: str = "monthly",
        amount: int = 30,
        activated: str | None,
        next_charge: str | None,
        paused: str | None = None,
        gifted_by: str | None = None,
        gifted: str | None = None,
        updated: str,
    ) -> None:
        created = activated or gifted or updated
        self.add(
            "sync_subscriptions",
            {
                "user_id": user_id,
                "active": active,
                "billing_interval": interval,
                "amount_charged": amount,
                "activated_at": at(activated) if activated else None,
                "next_charge_at": at(next_charge) if next_charge else None,
                "paused_at": at(paused) if paused else None,
                "is_gifted": gifted_by is not None,
                "gifted_by": gifted_by,
                "gifted_at": at(gifted) if gifted else None,
                "created_at": at(created),
                "updated_at": at(updated),
            },
        )
