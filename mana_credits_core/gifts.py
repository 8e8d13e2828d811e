"""Gift codes: credits set aside by a creator, redeemed once by someone else."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32 without 0 and 1: Crockford already drops I, L and O (they read as
1 and 0) and U (no accidental words); dropping 0 and 1 as well leaves no pair of
look-alikes at all, so a typed code needs no character mapping and codes issued before
(which may hold an O or a U) are still found exactly as they were written."""
CODE_LENGTH = 10
"""The web app's redeem field takes at most 10 characters. 30**10 ≈ 5.9e14 codes; see
docs/gifts.md for what guessing one costs."""
MAX_CODE_INPUT = 64  # characters of typed input (spaces and dashes included) looked at
MAX_GIFT_CREDITS = 10_000
MAX_MESSAGE = 500
DEFAULT_EXPIRATION_DAYS = 90
MAX_EXPIRATION_DAYS = 3650

# Made spaces in a shown name: controls, line separators and lone surrogates (which no
# store keeps and no page shows).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]{2,}")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


class GiftType(enum.StrEnum):
    SIMPLE = "simple"
    PERSONALIZED = "personalized"


class GiftStatus(enum.StrEnum):
    ACTIVE = "active"
    DEPLETED = "depleted"  # redeemed
    EXPIRED = "expired"  # not redeemed in time; credits returned to the creator
    CANCELLED = "cancelled"  # cancelled by the creator; credits returned
    REFUNDED = "refunded"


class RedemptionStatus(enum.StrEnum):
    SUCCESS = "success"
    FAILED_WRONG_USER = "failed_wrong_user"
    FAILED_DEPLETED = "failed_depleted"
    FAILED_EXPIRED = "failed_expired"
    FAILED_ALREADY_CLAIMED = "failed_already_claimed"


@dataclass(frozen=True, slots=True)
class GiftCode:
    id: str
    code: str
    creator_id: str
    creator_name: str
    total_credits: int
    redeemed: int  # 0 or 1: each gift is single-use
    type: GiftType
    status: GiftStatus
    target_email: str | None
    message: str | None
    expires_at: datetime
    reservation_transaction_id: str | None
    created_at: datetime
    updated_at: datetime

    def for_email(self, email: str | None) -> bool:
        """Whether a redeemer with `email` may redeem this gift."""
        if self.type == GiftType.SIMPLE:
            return True
        return email is not None and email_key(email) == email_key(self.target_email or "")


@dataclass(frozen=True, slots=True)
class GiftRedemption:
    id: str
    gift_code_id: str
    redeemer_user_id: str
    status: RedemptionStatus
    credits_received: int
    credit_transaction_id: str | None
    source_app_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReceivedGift:
    """A successful redemption with what the redeemer's list shows of its gift."""

    redemption: GiftRedemption
    code: str
    message: str | None
    creator_name: str


def normalise_code(value: str) -> str:
    """Codes are case-insensitive and may be typed with dashes or spaces."""
    return re.sub(r"[\s-]", "", value).upper()


def email_key(email: str) -> str:
    return email.strip().lower()


def looks_like_email(value: str) -> bool:
    return bool(_EMAIL.match(value.strip()))


MAX_CREATOR_NAME = 255  # characters, as stored


def creator_name(name: str | None, email: str | None) -> str:
    """The name a gift shows for its creator (public: the gift page, the redeemer's
    ledger entry): the identity's display `name` with control characters made spaces,
    runs of blanks made one and cut to `MAX_CREATOR_NAME` characters, an address in it
    masked. When that leaves nothing or is an e-mail address, `masked_name` of the
    address instead: the contract forbids an e-mail address as `creatorName`."""
    shown = " ".join(_CONTROL.sub(" ", name or "").split())[:MAX_CREATOR_NAME].rstrip()
    if looks_like_email(shown):
        return masked_name(shown)
    # An address inside the name ("Carol <carol@example.com>") is masked where it is.
    shown = _ADDRESS.sub(lambda found: masked_name(found.group()), shown)
    return shown or masked_name(email)


def masked_name(email: str | None) -> str:
    """A creator name that does not give away an e-mail address."""
    if not email or "@" not in email:
        return "A Mana user"
    local = email.split("@", 1)[0]
    return f"{local[:1]}***" if local else "A Mana user"
