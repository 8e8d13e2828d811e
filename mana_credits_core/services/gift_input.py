"""The rules a gift request must meet; each failure names the field the caller sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .. import validation as v
from ..errors import GiftNotFound, InvalidInput
from ..gifts import (
    DEFAULT_EXPIRATION_DAYS,
    MAX_CODE_INPUT,
    MAX_EXPIRATION_DAYS,
    MAX_GIFT_CREDITS,
    GiftType,
    looks_like_email,
    normalise_code,
)


def code_key(value: object) -> str:
    """The stored form of a typed code: upper case, spaces and dashes dropped.

    Raises `GiftNotFound` for anything that cannot be a code, so a malformed guess
    looks like any other miss."""
    code = normalise_code(v.identifier(value, "code", MAX_CODE_INPUT))
    if not code.isalnum() or not code.isascii():
        raise GiftNotFound()
    return code


def gift_credits(value: object, field: str = "totalCredits") -> int:
    """Credits for a gift: an integer in 1..MAX_GIFT_CREDITS."""
    credits = v.amount(value, field)
    if credits > MAX_GIFT_CREDITS:
        raise InvalidInput(field, f"{field} must be at most {MAX_GIFT_CREDITS}")
    return credits


def gift_type(value: object) -> GiftType:
    if isinstance(value, str) and value in GiftType.__members__.values():
        return GiftType(value)
    raise InvalidInput("type", "type must be simple or personalized")


def valid_email(value: object, field: str) -> str:
    if value is None:
        raise InvalidInput(field, f"{field} is required for a personalized gift")
    address = v.identifier(value, field, 254).strip()
    if not looks_like_email(address):
        raise InvalidInput(field, f"{field} must be an e-mail address")
    return address


def expiry(now: datetime, days: object, expires_at: datetime | None) -> datetime:
    """When a new gift expires: `expires_at` (a moment, UTC if naive) or `days` from
    `now` (default DEFAULT_EXPIRATION_DAYS), never both; in the future and at most
    MAX_EXPIRATION_DAYS away. Raises `InvalidInput` naming expiresAt or expirationDays."""
    if expires_at is not None:
        if days is not None:
            raise InvalidInput("expiresAt", "give expiresAt or expirationDays, not both")
        moment = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
        if moment <= now:
            raise InvalidInput("expiresAt", "expiresAt must be in the future")
        if moment > now + timedelta(days=MAX_EXPIRATION_DAYS):
            raise InvalidInput(
                "expiresAt", f"expiresAt must be at most {MAX_EXPIRATION_DAYS} days away"
            )
        return moment.astimezone(UTC)
    if days is None:
        return now + timedelta(days=DEFAULT_EXPIRATION_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise InvalidInput("expirationDays", "expirationDays must be a positive integer")
    if days > MAX_EXPIRATION_DAYS:
        raise InvalidInput(
            "expirationDays", f"expirationDays must be at most {MAX_EXPIRATION_DAYS}"
        )
    return now + timedelta(days=days)
