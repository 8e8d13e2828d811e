"""Gift request and response bodies (validation, rendering and OpenAPI in one place)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import ConfigDict, Field, StrictInt, StrictStr
from pydantic.config import JsonDict

from mana_credits_core.errors import InvalidInput
from mana_credits_core.gifts import GiftCode, GiftStatus, GiftType, ReceivedGift, RedemptionStatus

from .models import Camel, iso


class GiftCodeOut(Camel):
    id: str
    code: str
    short_url: str
    url: str = Field(description="The same as shortUrl (the web app reads this name)")
    creator_id: str
    creator_name: str
    total_credits: int
    redeemed: int
    type: GiftType
    status: GiftStatus
    target_email: str | None
    message: str | None
    expires_at: str
    reservation_transaction_id: str | None
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, g: GiftCode, base_url: str) -> GiftCodeOut:
        short_url = f"{base_url.rstrip('/')}/g/{g.code}"
        return cls(
            id=g.id,
            code=g.code,
            short_url=short_url,
            url=short_url,
            creator_id=g.creator_id,
            creator_name=g.creator_name,
            total_credits=g.total_credits,
            redeemed=g.redeemed,
            type=g.type,
            status=g.status,
            target_email=g.target_email,
            message=g.message,
            expires_at=iso(g.expires_at),
            reservation_transaction_id=g.reservation_transaction_id,
            created_at=iso(g.created_at),
            updated_at=iso(g.updated_at),
        )


class GiftInfoOut(Camel):
    """What anyone with the code may see: no e-mail addresses."""

    code: str
    type: GiftType
    status: GiftStatus
    total_credits: int
    redeemed: bool
    is_personalized: bool
    message: str | None
    creator_name: str
    expires_at: str

    @classmethod
    def of(cls, g: GiftCode) -> GiftInfoOut:
        return cls(
            code=g.code,
            type=g.type,
            status=g.status,
            total_credits=g.total_credits,
            redeemed=bool(g.redeemed),
            is_personalized=g.type == GiftType.PERSONALIZED,
            message=g.message,
            creator_name=g.creator_name,
            expires_at=iso(g.expires_at),
        )


class GiftRedemptionOut(Camel):
    """A gift received: the redemption, and what the web app shows of its gift."""

    id: str
    gift_code_id: str
    redeemer_user_id: str
    status: RedemptionStatus
    credits_received: int
    credit_transaction_id: str | None
    source_app_id: str | None
    created_at: str
    code: str
    credits: int = Field(description="The same as creditsReceived")
    message: str | None = Field(description="The creator's message with the gift")
    creator_name: str
    redeemed_at: str = Field(description="The same as createdAt")

    @classmethod
    def of(cls, received: ReceivedGift) -> GiftRedemptionOut:
        r = received.redemption
        return cls(
            id=r.id,
            gift_code_id=r.gift_code_id,
            redeemer_user_id=r.redeemer_user_id,
            status=r.status,
            credits_received=r.credits_received,
            credit_transaction_id=r.credit_transaction_id,
            source_app_id=r.source_app_id,
            created_at=iso(r.created_at),
            code=received.code,
            credits=r.credits_received,
            message=received.message,
            creator_name=received.creator_name,
            redeemed_at=iso(r.created_at),
        )


# Exactly one of each pair: the contract's names and the deployed web app's.
_ONE_OF_EACH: JsonDict = {
    "allOf": [
        {"oneOf": [{"required": ["totalCredits"]}, {"required": ["credits"]}]},
        {"not": {"required": ["expirationDays", "expiresAt"]}},
    ]
}


class CreateGiftBody(Camel):
    """`totalCredits` or, as the deployed web app sends it, `credits` (not both);
    `expirationDays` or `expiresAt` (not both; neither: 90 days)."""

    model_config = ConfigDict(json_schema_extra=_ONE_OF_EACH)

    total_credits: StrictInt | None = Field(None, description="Credits to give, 1..10000")
    credits: StrictInt | None = Field(None, description="The web app's name for totalCredits")
    type: StrictStr = "simple"
    target_email: StrictStr | None = None
    message: StrictStr | None = Field(None, description="At most 500 characters")
    expiration_days: StrictInt | None = Field(None, description="Days until it expires, > 0")
    expires_at: StrictStr | None = Field(
        None,
        description="ISO-8601 date (midnight UTC) or date-time (UTC unless it has an offset),"
        " in the future",
    )
    source_app_id: StrictStr | None = Field(
        None, description="The app the gift is made in; its ledger entry is booked for it"
    )

    def amount(self) -> tuple[int, str]:
        """The credits given and the name they were given under.

        Raises `InvalidInput` when both names or neither are given."""
        if self.total_credits is not None and self.credits is not None:
            raise InvalidInput("credits", "give totalCredits or credits, not both")
        if self.credits is not None:
            return self.credits, "credits"
        if self.total_credits is None:
            raise InvalidInput("totalCredits", "totalCredits: Field required")
        return self.total_credits, "totalCredits"

    def expiry(self) -> datetime | None:
        """`expiresAt` as a moment (naive: UTC), or None. Raises `InvalidInput`."""
        if self.expires_at is None:
            return None
        if self.expiration_days is not None:
            raise InvalidInput("expiresAt", "give expiresAt or expirationDays, not both")
        try:
            moment = datetime.fromisoformat(self.expires_at.strip())
        except ValueError as exc:
            raise InvalidInput(
                "expiresAt", "expiresAt must be an ISO-8601 date or date-time"
            ) from exc
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class RedeemBody(Camel):
    source_app_id: StrictStr | None = None


class RedeemOut(Camel):
    success: Literal[True] = True
    credits_received: int
    credits: int = Field(description="The same as creditsReceived")
    message: str | None
    creator_name: str
    new_balance: int = Field(description="The redeemer's balance right after the gift")


class CancelGiftOut(Camel):
    success: Literal[True] = True
    refunded_credits: int


class RedeemPendingBody(Camel):
    user_id: StrictStr
    email: StrictStr


class RedeemPendingOut(Camel):
    redeemed: int
    total_credits: int
