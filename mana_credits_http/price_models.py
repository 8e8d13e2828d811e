"""The public price list's shape (`GET /api/v1/credits/prices`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mana_credits_core.pricing import Price, format_credits

from .models import Camel, iso


class PriceOut(Camel):
    """One active operation of the price list: `credits` (text, e.g. "0.1") or
    `priceMilliCredits` (integer, 1 credit = 1000) per `unitSize` units of `unit`
    (null: per call)."""

    operation: str
    app_id: str
    name: str
    description: str
    credits: Annotated[str, Field(description='Credits as text, e.g. "0.1" (never a float)')]
    price_milli_credits: int
    unit: str | None
    unit_size: int
    updated_at: str

    @classmethod
    def of(cls, price: Price) -> PriceOut:
        return cls(
            operation=price.operation,
            app_id=price.app_id,
            name=price.name,
            description=price.description,
            credits=format_credits(price.price_milli),
            price_milli_credits=price.price_milli,
            unit=price.unit,
            unit_size=price.unit_size,
            updated_at=iso(price.updated_at),
        )
