"""What a debit or a hold charges: credits (`amount`) or an operation of the price list
(`operation`, `quantity`), never both. Deployed clients send `amount`; their bodies
mean what they meant before."""

from __future__ import annotations

from typing import TypeVar

from mana_credits_core import pricing
from mana_credits_core.errors import InvalidInput

T = TypeVar("T")
SHOWN = pricing.MAX_OPERATION  # characters of a bad operation id repeated in the message


def operation_of(amount: int | None, operation: str | None, quantity: int | None) -> str | None:
    """The operation a body names, or None when it gives `amount` credits.

    Raises `InvalidInput`: amount and operation both (field amount), neither (amount),
    quantity with amount (quantity), an operation id no operation can have (operation,
    naming what was sent; a well-formed unknown one is the core's to refuse).
    """
    if operation is not None:
        if amount is not None:
            raise InvalidInput("amount", "give amount or operation, not both")
        well_formed(operation)
        return operation
    if amount is None:
        raise InvalidInput(
            "amount", "amount: Field required (or operation, an operation of the price list)"
        )
    if quantity is not None:
        raise InvalidInput("quantity", "quantity goes with operation, not with amount")
    return None


def required(value: T | None, name: str) -> T:
    """`value`, which a body giving `amount` must have. Raises `InvalidInput` naming the
    field `name` (its wire name) as a missing field always was."""
    if value is None:
        raise InvalidInput(name, f"{name}: Field required")
    return value


def well_formed(operation: str) -> None:
    """Refuse an operation id that cannot be on the price list, naming it (escaped and
    cut to `SHOWN` characters: it is the caller's text)."""
    try:
        pricing.operation_id(operation)
    except InvalidInput:
        shown = operation if len(operation) <= SHOWN else operation[:SHOWN] + "…"
        raise InvalidInput(
            "operation",
            f"unknown operation {shown!r}: operation ids are a-z, 0-9 and _"
            " (GET /api/v1/credits/prices lists them)",
        ) from None
