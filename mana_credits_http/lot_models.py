"""Bodies of the credit lot routes: a user's open lots, and the expiry and priority a
grant may give its credits (docs/credits.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, Field, StrictInt

from mana_credits_core.lots import MAX_PRIORITY, MIN_PRIORITY, Lot, LotSource

from .models import Camel, iso

EXAMPLE = "2026-03-31T23:59:59Z"


def _date_time_text(value: Any) -> Any:
    """Only an ISO-8601 date and time (with its zone, checked next): no bare date, whose
    end would depend on a time zone, and no number of seconds."""
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value) < 16 or value[10] not in "Tt ":
        raise ValueError(
            "must be an ISO-8601 date and time with a time zone, e.g. 2026-03-31T23:59:59Z"
        )
    return value


ExpiresAt = Annotated[
    AwareDatetime | None,
    BeforeValidator(_date_time_text),
    Field(description="When the credits expire (ISO-8601 date-time with zone, in the future)"),
]
Priority = Annotated[
    StrictInt | None,
    Field(ge=MIN_PRIORITY, le=MAX_PRIORITY, description="Burn order, lower first (default 50)"),
]


class LotOut(Camel):
    """One lot: `amount` credits given at once, `remaining` of them left; `expiresAt`
    null for credits that never expire."""

    id: str
    source: LotSource
    amount: int
    remaining: int
    priority: int
    expires_at: str | None
    created_at: str

    @classmethod
    def of(cls, lot: Lot) -> LotOut:
        return cls(
            id=lot.id,
            source=lot.source,
            amount=lot.amount,
            remaining=lot.remaining,
            priority=lot.priority,
            expires_at=None if lot.expires_at is None else iso(lot.expires_at),
            created_at=iso(lot.created_at),
        )


class LotsOut(Camel):
    """The lots with credits left, in burn order: the next debit takes from the first."""

    lots: list[LotOut]

    @classmethod
    def of(cls, lots: list[Lot]) -> LotsOut:
        return cls(lots=[LotOut.of(lot) for lot in lots])
